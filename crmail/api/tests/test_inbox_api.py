"""``GET /api/v1/inbox`` and ``/inbox/folders``: the caller's own conversations by stream,
the usual envelope, 404 for anyone else's folder, 422 for a stream that does not exist."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmail.api.tests.conftest import ApiClient
from crmail.mailboxes.tests.test_inbox import connect, folder, put
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_the_inbox_lists_conversations_with_their_stream_and_records(org):
    rep = org.rep
    box = connect(rep)
    buyer = f.contact(rep, "buyer@example.com", last_name="Buyer")
    deal = f.deal(rep, "Renewal", contact=buyer, amount=Decimal("10"))
    deal_mail = put(box, on=(buyer,), seen=False, flagged=True)
    put(box)
    got = ApiClient(rep).get("/inbox", {"stream": "deals"})
    assert got.status_code == 200
    body = got.json()
    assert (body["count"], body["limit"], body["offset"]) == (1, 50, 0)
    [item] = body["items"]
    assert item["message_id"] == deal_mail.pk
    assert item["thread_id"] == deal_mail.thread_id
    assert (item["stream"], item["unread"], item["flagged"], item["message_count"]) == (
        "deals",
        True,
        True,
        1,
    )
    assert item["records"] == [
        {"module": "deals", "id": deal.pk, "name": "Renewal"},
        {"module": "contacts", "id": buyer.pk, "name": "Pat Buyer"},
    ]
    assert item["url"].endswith(f"/messages/{deal_mail.pk}/")
    assert ApiClient(rep).get("/inbox").json()["count"] == 2
    assert ApiClient(rep).get("/inbox", {"unread": "true"}).json()["count"] == 1


def test_a_folder_of_another_user_answers_404_and_a_bad_stream_422(org):
    put(connect(org.rep))
    theirs = connect(org.peer)
    put(theirs, seen=False)
    client = ApiClient(org.rep)
    assert client.get("/inbox", {"folder": folder(theirs).pk}).status_code == 404
    assert client.get("/inbox", {"folder": 2**40}).status_code == 404
    bad = client.get("/inbox", {"stream": "spam"})
    assert bad.status_code == 422
    assert "stream" in bad.content.decode()
    assert client.get("/inbox", {"limit": 0}).status_code == 422


def test_folders_list_only_the_callers_with_counts(org):
    box = connect(org.rep)
    put(box, seen=False)
    put(connect(org.peer), seen=False)
    got = ApiClient(org.rep).get("/inbox/folders").json()
    assert [(x["name"], x["role"], x["unread"], x["total"]) for x in got] == [
        ("INBOX", "inbox", 1, 1),
        ("Sent", "sent", 0, 0),
        ("Archive", "archive", 0, 0),
        ("Clients", "", 0, 0),
    ]
    assert {x["mailbox_id"] for x in got} == {box.pk}
    assert ApiClient().get("/inbox/folders").status_code == 401
