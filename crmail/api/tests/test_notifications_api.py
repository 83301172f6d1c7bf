"""``/notifications``: one's own notifications, newest first; marking read by ids or all;
another user's are never listed or marked. And the mailbox's ``customer_alerts`` switch."""

from __future__ import annotations

import pytest

from crmail.api.tests.conftest import ApiClient
from crmail.notifications.models import Notification
from crmail.notifications.tests.factories import notification
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_the_list_is_ones_own_newest_first_and_filters_unread(org):
    older = notification(org.rep, "New mail from a@x.test: First")
    newer = notification(org.rep, "New mail from b@x.test: Second")
    notification(org.peer, "New mail from c@x.test: Not yours")
    Notification.objects.filter(pk=older.pk).update(read_at=older.created_at)

    rep = ApiClient(org.rep)
    answer = rep.get("/notifications")
    assert answer.status_code == 200
    body = answer.json()
    assert [n["id"] for n in body["items"]] == [newer.pk, older.pk] and body["count"] == 2
    first = body["items"][0]
    assert first["title"] == "New mail from b@x.test: Second"
    assert first["kind"] == "customer_mail" and first["read_at"] is None
    assert first["message_id"] == newer.message_id and first["record_module"] is None

    unread = rep.get("/notifications", {"unread": "true"}).json()
    assert [n["id"] for n in unread["items"]] == [newer.pk] and unread["count"] == 1
    assert ApiClient(org.admin).get("/notifications").json()["count"] == 0


def test_marking_read_by_ids_and_all_touches_only_ones_own(org):
    mine = [notification(org.rep) for _ in range(3)]
    theirs = notification(org.peer)
    rep = ApiClient(org.rep)

    answer = rep.post("/notifications/read", {"ids": [mine[0].pk, theirs.pk]})
    assert answer.status_code == 200 and answer.json() == {"marked": 1, "unread": 2}
    assert rep.post("/notifications/read", {"ids": [mine[0].pk]}).json()["marked"] == 0
    assert rep.post("/notifications/read", {"all": True}).json() == {"marked": 2, "unread": 0}
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert ApiClient(org.peer).get("/notifications", {"unread": "true"}).json()["count"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": [1], "all": True},
        {"all": False},
        {"ids": ["x"]},
        {"ids": [0]},
        {"everything": 1},
    ],
)
def test_bad_read_requests_answer_422(org, body):
    answer = ApiClient(org.rep).post("/notifications/read", body)
    assert answer.status_code == 422, answer.content
    assert answer.json()["detail"]


def test_without_a_token_nothing_is_answered(org):
    notification(org.rep)
    assert ApiClient().get("/notifications").status_code == 401
    assert ApiClient().post("/notifications/read", {"all": True}).status_code == 401
    assert Notification.objects.filter(read_at__isnull=True).count() == 1


def test_the_mailbox_switch_is_shown_and_changed(org, dovecot, dovecot_user):
    login, password = dovecot_user
    mailbox = f.mailbox(dovecot, login, password, owner=org.rep)
    rep = ApiClient(org.rep)
    assert rep.get(f"/mailboxes/{mailbox.pk}").json()["customer_alerts"] is True
    changed = rep.patch(f"/mailboxes/{mailbox.pk}", {"customer_alerts": False})
    assert changed.status_code == 200 and changed.json()["customer_alerts"] is False
    mailbox.refresh_from_db()
    assert mailbox.customer_alerts is False
    assert rep.patch(f"/mailboxes/{mailbox.pk}", {"customer_alerts": None}).status_code == 422
    assert (
        ApiClient(org.peer).patch(f"/mailboxes/{mailbox.pk}", {"customer_alerts": True}).status_code
        == 404
    )
