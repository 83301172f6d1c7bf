"""``POST /messages/{id}/reply`` and ``/forward``: threaded, checked in what an SMTP sink got."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from crmail.api.tests.conftest import ApiClient
from crmail.api.tests.test_send import sending_mailbox
from crmail.mailboxes.models import SentMessage
from crmail.web.tests.mail_samples import PDF, deliver
from crmail.web.tests.test_reply import ORIGINAL_ID, original

pytestmark = pytest.mark.django_db


def received(sink):  # type: ignore[no-untyped-def]
    [got] = sink.wait_for(1)
    return got, message_from_bytes(got.data, policy=policy.default)


def test_reply_all_is_threaded_with_the_text_above_the_quote(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink, extra_from_addresses=["sales@crmail.test"])
    message = deliver(org.rep, original(**{"Subject": "Re: RE: Spring offer"}))
    response = ApiClient(org.rep).post(
        f"/messages/{message.pk}/reply", {"all": True, "text": "Contract attached tomorrow."}
    )
    assert response.status_code == 201, response.content
    envelope, got = received(smtp_sink)
    assert sorted(envelope.rcpt_tos) == [
        "bob@vendor.example",
        "carl@client.example",
        "desk@vendor.example",
    ]
    assert got["Subject"] == "Re: Spring offer"
    assert got["In-Reply-To"] == f"<{ORIGINAL_ID}>"
    assert " ".join(got["References"].split()).endswith(f"<offer-2@crmail.test> <{ORIGINAL_ID}>")
    text = got.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Contract attached tomorrow.\n\nOn 3 Dec 2026, Ada Sender wrote:\n")
    assert "> Can you send the contract?" in text
    assert response.json()["from_address"] == "rep@crmail.test"


def test_forward_carries_the_attachments(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink)
    message = deliver(org.rep, original())
    response = ApiClient(org.rep).post(
        f"/messages/{message.pk}/forward", {"to": ["legal@client.example"], "text": "FYI"}
    )
    assert response.status_code == 201, response.content
    envelope, got = received(smtp_sink)
    assert envelope.rcpt_tos == ["legal@client.example"]
    assert got["Subject"] == "Fwd: Spring offer"
    assert [(p.get_filename(), p.get_content()) for p in got.iter_attachments()] == [
        ("terms.pdf", PDF)
    ]


def test_a_message_the_caller_may_not_see_answers_404_and_nothing_is_sent(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink)
    message = deliver(org.rep, original())  # private to the rep
    sending_mailbox(org.peer, smtp_sink)
    api = ApiClient(org.peer)
    for path, body in (
        (f"/messages/{message.pk}/reply", {"text": "hi"}),
        (f"/messages/{message.pk}/forward", {"to": ["x@client.example"]}),
        ("/messages/987654/reply", {}),
    ):
        response = api.post(path, body)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}
    assert smtp_sink.messages == [] and not SentMessage.objects.exists()


def test_without_a_mailbox_a_reply_says_why(org):
    message = deliver(org.rep, original())  # its mailbox has no outgoing server
    response = ApiClient(org.rep).post(f"/messages/{message.pk}/reply", {})
    assert response.status_code == 409
    assert "outgoing (SMTP) server" in response.json()["detail"]
