"""``POST /messages/send``: through a real SMTP server, with the Sent copy on a real Dovecot."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.mail.models import Message
from crmail.mailboxes.models import Mailbox, SentMessage
from tests import factories as f

pytestmark = pytest.mark.django_db


def sending_mailbox(owner, sink, **extra: Any) -> Mailbox:  # type: ignore[no-untyped-def]
    """An IMAP mailbox (no server needed: no Sent copy) that sends through ``sink``."""
    return Mailbox.objects.create(
        owner=owner,
        email=owner.email,
        protocol="imap",
        host="127.0.0.1",
        port=1,
        security="none",
        login=owner.email,
        secret="pw",
        smtp_host=extra.pop("smtp_host", "127.0.0.1"),
        smtp_port=sink.port,
        smtp_security="none",
        smtp_same_credentials=False,  # the sink takes mail without a login
        **{"store_sent_on_server": False, **extra},
    )


def body(**extra: Any) -> dict[str, Any]:
    return {
        "from": "rep@crmail.test",
        "to": ["grace@client.example"],
        "subject": "Your quote",
        "text": "Here it is.",
        **extra,
    }


def test_a_message_sent_from_a_record_arrives_with_the_right_headers(
    org, dovecot, dovecot_user, smtp_sink
):
    login, password = dovecot_user
    dovecot.create_mailbox(login, "Sent")
    f.mailbox(
        dovecot,
        login,
        password,
        owner=org.rep,
        email="rep@crmail.test",
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_security="none",
        smtp_same_credentials=False,
    )
    contact = f.contact(org.rep, "grace@client.example")
    response = ApiClient(org.rep).post(
        "/messages/send",
        body(
            cc=["boss@client.example"],
            bcc=["archive@crmail.test"],
            html="<p>Here it is.</p>",
            in_reply_to="<ask-1@client.example>",
            record={"module": "contacts", "id": contact.pk},
        ),
    )
    assert response.status_code == 201, response.content
    data = response.json()

    [got] = smtp_sink.wait_for(1, 5)
    assert got.mail_from == "rep@crmail.test"
    assert sorted(got.rcpt_tos) == [
        "archive@crmail.test",
        "boss@client.example",
        "grace@client.example",
    ]
    mail = message_from_bytes(got.data, policy=policy.default)
    assert mail["From"] == "Rex Rep <rep@crmail.test>"
    assert mail["To"] == "grace@client.example"
    assert mail["Cc"] == "boss@client.example"
    assert mail["Bcc"] is None  # Bcc is in the envelope only
    assert mail["Subject"] == "Your quote"
    assert mail["In-Reply-To"] == "<ask-1@client.example>"
    assert mail["References"] == "<ask-1@client.example>"
    assert mail["Message-ID"].strip("<>") == data["message_id_header"]
    assert mail.get_body(("plain",)).get_content().strip() == "Here it is."
    assert "<p>Here it is.</p>" in mail.get_body(("html",)).get_content()

    assert data["sent_copy_stored"] is True and data["sent_copy_note"] == ""
    assert data["from_address"] == "rep@crmail.test"
    stored = Message.objects.get(pk=data["message_id"])
    assert stored.subject == "Your quote" and stored.message_id == data["message_id_header"]
    sent = SentMessage.objects.get(pk=data["sent_id"])
    assert (sent.record_module, sent.record_id, sent.sender) == ("contacts", contact.pk, org.rep)
    [copy] = dovecot.messages(login, "Sent")
    assert copy["message_id"].strip("<>") == data["message_id_header"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject": "Hello\r\nBcc: victim@else.example"}, "subject"),
        ({"subject": "Hello\nX-Injected: 1"}, "subject"),
        ({"to": ["grace@client.example\r\nBcc: victim@else.example"]}, "to"),
        ({"cc": ["a@b.example\nX: y"]}, "cc"),
        ({"bcc": ["a@b.example\r"]}, "bcc"),
        ({"from": "rep@crmail.test\r\nBcc: victim@else.example"}, "from"),
        ({"in_reply_to": "x@y\r\nBcc: victim@else.example"}, "in_reply_to"),
    ],
)
def test_a_line_break_in_a_header_is_refused_and_nothing_is_sent(org, smtp_sink, change, field):
    sending_mailbox(org.rep, smtp_sink)
    response = ApiClient(org.rep).post("/messages/send", body(**change))
    assert response.status_code == 422, response.content
    assert fields(response) == {field}
    assert "line breaks" in response.json()["detail"][0]["message"]
    assert smtp_sink.messages == []
    assert not SentMessage.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"from": "ceo@crmail.test"}, "from"),
        ({"to": ["not an address"]}, "to"),
        ({"to": []}, "to"),
        ({"to": None}, "to"),
        ({"sender": "rep@crmail.test"}, "sender"),
        ({"subject": None}, "subject"),
        ({"record": {"module": "invoices", "id": 1}}, "record"),
        ({"record": {"module": "contacts", "id": 0}}, "record"),
        ({"attachments": []}, "attachments"),
    ],
)
def test_bad_input_answers_422_naming_the_field(org, smtp_sink, change, field):
    sending_mailbox(org.rep, smtp_sink)
    response = ApiClient(org.rep).post("/messages/send", body(**change))
    assert response.status_code == 422, response.content
    assert fields(response) == {field}
    assert smtp_sink.messages == []


def test_a_missing_from_is_named_as_from(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink)
    payload = body()
    del payload["from"]
    response = ApiClient(org.rep).post("/messages/send", payload)
    assert response.status_code == 422
    assert fields(response) == {"from"}


def test_an_extra_from_address_may_be_used(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink, extra_from_addresses=["sales@crmail.test"])
    response = ApiClient(org.rep).post("/messages/send", body(**{"from": "Sales@crmail.test"}))
    assert response.status_code == 201, response.content
    assert smtp_sink.wait_for(1, 5)[0].mail_from == "Sales@crmail.test"


def test_a_record_the_sender_may_not_see_answers_404_and_nothing_is_sent(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink)
    hidden = f.contact(org.manager, "grace@client.example")
    api = ApiClient(org.rep)
    for record in ({"module": "contacts", "id": hidden.pk}, {"module": "deals", "id": 987654}):
        response = api.post("/messages/send", body(record=record))
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}
    assert smtp_sink.messages == [] and not SentMessage.objects.exists()
    # The manager sees the rep's deal: sending from it is recorded against it.
    deal = f.deal(org.rep)
    sending_mailbox(org.manager, smtp_sink)
    response = ApiClient(org.manager).post(
        "/messages/send",
        body(**{"from": "manager@crmail.test"}, record={"module": "deals", "id": deal.pk}),
    )
    assert response.status_code == 201
    assert SentMessage.objects.get().record_module == "deals"


def test_without_an_active_mailbox_sending_is_409_in_words(org):
    response = ApiClient(org.rep).post("/messages/send", body())
    assert response.status_code == 409
    assert "Connect a mailbox" in response.json()["detail"]


def test_a_mailbox_without_an_outgoing_server_is_409_in_words(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink, smtp_host="")
    response = ApiClient(org.rep).post("/messages/send", body())
    assert response.status_code == 409
    assert "no outgoing (SMTP) server" in response.json()["detail"]


def test_a_refusing_outgoing_server_is_502_and_nothing_is_stored(org, smtp_sink_factory):
    strict = smtp_sink_factory(username="rex", password="right", auth_required=True)
    sending_mailbox(
        org.rep,
        strict,
        smtp_login="rex",
        smtp_secret="wrong",
    )
    response = ApiClient(org.rep).post("/messages/send", body())
    assert response.status_code == 502
    assert response.json()["detail"].startswith("The outgoing server did not take the message:")
    assert "wrong" not in response.json()["detail"]
    assert not SentMessage.objects.exists() and not Message.objects.exists()


def test_the_answer_says_why_no_sent_copy_was_stored(org, smtp_sink):
    mailbox = sending_mailbox(org.rep, smtp_sink)
    api = ApiClient(org.rep)
    off = api.post("/messages/send", body()).json()
    assert off["sent_copy_stored"] is False
    assert "off for this mailbox" in off["sent_copy_note"]
    mailbox.provider, mailbox.store_sent_on_server = "gmail", True
    mailbox.save()
    gmail = api.post("/messages/send", body(subject="Again")).json()
    assert gmail["sent_copy_stored"] is False
    assert "Gmail files sent mail in its Sent folder itself" in gmail["sent_copy_note"]
    assert len(smtp_sink.wait_for(2, 5)) == 2
