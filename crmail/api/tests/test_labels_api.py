"""The labels by deal state through the API: the switches on ``/mailboxes/{id}``, the move
log and undo, against a real Dovecot."""

from __future__ import annotations

from email.utils import format_datetime

import pytest
from django.utils import timezone

from crmail.api.tests.conftest import ApiClient
from crmail.mailboxes.labels.categories import this_month
from crmail.mailboxes.tasks import run_sync
from tests import factories as f

pytestmark = pytest.mark.django_db


def mail(sender: str, n: int) -> bytes:
    return (
        f"From: {sender}\r\nTo: rep@crmail.test\r\nSubject: Order {n}\r\n"
        f"Message-ID: <order{n}@acme.test>\r\nDate: {format_datetime(timezone.now())}\r\n"
        f"\r\nThe order, number {n}.\r\n"
    ).encode()


@pytest.fixture
def inbox(org, dovecot, dovecot_user, django_capture_on_commit_callbacks):
    login, password = dovecot_user
    mailbox = f.mailbox(dovecot, login, password, owner=org.rep)
    _, last = this_month()
    f.deal(org.rep, contact=f.contact(org.rep, "cleo@acme.test"), closing_date=last)
    f.deal(org.rep, stage_name="Closed Won", contact=f.contact(org.rep, "wyn@acme.test"))
    dovecot.deliver(login, mail("cleo@acme.test", 1))
    dovecot.deliver(login, mail("wyn@acme.test", 2))
    with django_capture_on_commit_callbacks(execute=True):
        run_sync(mailbox)
    return dovecot, login, mailbox


def test_both_switches_are_read_and_changed_and_labels_need_alerts(
    org, inbox, django_capture_on_commit_callbacks
):
    server, login, mailbox = inbox
    rep = ApiClient(org.rep)
    shown = rep.get(f"/mailboxes/{mailbox.pk}").json()
    assert (shown["customer_alerts"], shown["deal_labels"]) == (True, False)

    refused = rep.patch(f"/mailboxes/{mailbox.pk}", {"customer_alerts": False, "deal_labels": True})
    assert refused.status_code == 422
    (error,) = refused.json()["detail"]
    assert error["field"] == "deal_labels" and "customer mail alerts" in error["message"]
    assert rep.patch(f"/mailboxes/{mailbox.pk}", {"deal_labels": None}).status_code == 422
    wrong = rep.patch(f"/mailboxes/{mailbox.pk}", {"deal_labels": True, "remove_labels": True})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["field"] == "remove_labels"

    with django_capture_on_commit_callbacks(execute=True):
        on = rep.patch(f"/mailboxes/{mailbox.pk}", {"deal_labels": True})
    assert on.status_code == 200 and on.json()["deal_labels"] is True
    assert [m["uid"] for m in server.messages(login, "Deals Closing This Month")]
    assert [m["uid"] for m in server.messages(login, "Customers")]
    assert server.messages(login, "INBOX") == []

    # Alerts cannot go off under the labels; both at once can.
    assert rep.patch(f"/mailboxes/{mailbox.pk}", {"customer_alerts": False}).status_code == 422
    with django_capture_on_commit_callbacks(execute=True):
        off = rep.patch(
            f"/mailboxes/{mailbox.pk}",
            {"customer_alerts": False, "deal_labels": False, "remove_labels": True},
        )
    assert off.status_code == 200
    assert (off.json()["customer_alerts"], off.json()["deal_labels"]) == (False, False)
    assert "Customers" not in server.list_mailboxes(login)
    assert len(server.messages(login, "INBOX")) == 2
    assert (
        ApiClient(org.peer).patch(f"/mailboxes/{mailbox.pk}", {"deal_labels": True}).status_code
        == 404
    )


def test_the_move_log_lists_moves_and_undoes_them_for_the_owner_only(
    org, inbox, django_capture_on_commit_callbacks
):
    server, login, mailbox = inbox
    rep = ApiClient(org.rep)
    with django_capture_on_commit_callbacks(execute=True):
        rep.patch(f"/mailboxes/{mailbox.pk}", {"deal_labels": True})
    listed = rep.get(f"/mailboxes/{mailbox.pk}/label-moves").json()
    assert listed["count"] == 2
    by_sender = {m["from_address"]: m for m in listed["items"]}
    cleo = by_sender["cleo@acme.test"]
    assert (cleo["source_name"], cleo["target_name"], cleo["category"]) == (
        "Inbox",
        "Deals Closing This Month",
        "closing",
    )
    assert cleo["subject"] == "Order 1" and cleo["can_undo"] is True

    assert ApiClient(org.admin).get(f"/mailboxes/{mailbox.pk}/label-moves").status_code == 403
    assert ApiClient(org.peer).get(f"/mailboxes/{mailbox.pk}/label-moves").status_code == 404
    admin_undo = ApiClient(org.admin).post(f"/mailboxes/{mailbox.pk}/label-moves/{cleo['id']}/undo")
    assert admin_undo.status_code == 403

    undone = rep.post(f"/mailboxes/{mailbox.pk}/label-moves/{cleo['id']}/undo")
    assert undone.status_code == 200, undone.content
    assert undone.json()["undone_at"] and undone.json()["can_undo"] is False
    assert len(server.messages(login, "INBOX")) == 1
    again = rep.post(f"/mailboxes/{mailbox.pk}/label-moves/{cleo['id']}/undo")
    assert again.status_code == 409 and "undone already" in again.json()["detail"]
    assert rep.post(f"/mailboxes/{mailbox.pk}/label-moves/999999/undo").status_code == 404
