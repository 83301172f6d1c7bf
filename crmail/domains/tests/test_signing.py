"""Mail crmail sends from an authenticated domain is DKIM-signed, through SMTP and the
Gmail and Graph APIs alike, and the signature verifies with dkimpy against the test DNS
server's zone; a tampered copy does not."""

from __future__ import annotations

from typing import Any

import dkim
import pytest

from crmail.domains import inbound, signing
from crmail.domains.models import State
from crmail.domains.tests.conftest import make_domain, publish
from crmail.mail.compose import Draft, build_message
from crmail.mail.models import Message
from crmail.mail.store import raw_bytes
from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.sending import send_message
from crmail.mailboxes.tests.standins.gmail import GmailStandIn
from crmail.mailboxes.tests.standins.graph import serve
from tests import factories as f

pytestmark = pytest.mark.django_db


def verifies(raw: bytes, domain: str = "example.com") -> bool:
    """dkimpy's verification, its key asked of the test zone through crmail's resolver."""
    return inbound.dkim_result(raw, domain)[0]


def offer(sender: str = "rep@example.com", **kw: Any) -> bytes:
    message, _ = build_message(
        Draft(sender=sender, to=["client@customer.test"], subject="Your offer", text="Hi.", **kw)
    )
    return message.as_bytes()


@pytest.fixture
def example(zone):
    domain = make_domain(state=State.AUTHENTICATED)
    publish(zone, domain)
    return domain


def test_a_signed_message_verifies_and_a_tampered_one_does_not(example):
    raw = offer()
    signed = signing.sign("rep@example.com", raw)
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert signed.endswith(raw)
    assert f"s={example.selector}".encode() in signed
    assert verifies(signed)
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: None) is False  # no key: no pass
    assert not verifies(signed.replace(b"Hi.", b"Hi!"))
    assert not verifies(signed.replace(b"Subject: Your offer", b"Subject: Your bill"))
    assert inbound.dkim_result(signed.replace(b"Hi.", b"Hi!"), "example.com")[1] == (
        "its DKIM signature of example.com does not verify"
    )


def test_mail_from_a_domain_not_authenticated_is_not_signed(zone):
    pending = make_domain("pending.example", state=State.PENDING)
    publish(zone, pending)
    raw = offer("rep@pending.example")
    assert signing.sign("rep@pending.example", raw) == raw
    raw = offer("rep@other.example")
    assert signing.sign("rep@other.example", raw) == raw


def test_the_signature_survives_a_header_added_on_top_and_bcc_is_not_signed(example):
    signed = signing.sign("rep@example.com", offer())
    assert b"bcc" not in signed.split(b"\r\n\r\n")[0].split(b"h=")[1].split(b";")[0].lower()
    assert verifies(b"Bcc: boss@example.com\r\n" + signed)
    assert verifies(b"Received: from somewhere\r\n" + signed)


def test_mail_sent_through_smtp_is_signed_and_stored_as_it_went_out(example, smtp_sink):
    rep = f.user("rep@crmail.test")
    Mailbox.objects.create(
        owner=rep,
        email="rep@example.com",
        is_active=True,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_security="none",
        smtp_same_credentials=False,
        store_sent_on_server=False,
        extra_from_addresses=["rep@other.example"],
    )
    sent = send_message(
        rep, Draft(sender="rep@example.com", to=["client@customer.test"], subject="Hi", text="x")
    )
    [got] = smtp_sink.wait_for(1, 5)
    assert got.data.startswith(b"DKIM-Signature:")
    assert verifies(got.data)
    assert raw_bytes(Message.objects.get(pk=sent.message_id)) == got.data

    send_message(
        rep, Draft(sender="rep@other.example", to=["client@customer.test"], subject="Hi", text="y")
    )
    assert b"DKIM-Signature" not in smtp_sink.wait_for(2, 5)[1].data


def test_mail_sent_through_the_gmail_api_is_signed(zone, settings):
    domain = make_domain("gmail.test", state=State.AUTHENTICATED)
    publish(zone, domain)
    with GmailStandIn("rep@gmail.test") as gmail:
        gmail.token("access-1")
        settings.CRMAIL_GMAIL_API_URL = gmail.url
        mailbox = f.api_mailbox("gmail", "rep@gmail.test", "access-1", is_active=True)
        draft = Draft(
            sender="rep@gmail.test", to=["ada@acme.io"], bcc=["boss@acme.io"], subject="S", text="T"
        )
        sent = send_message(mailbox.owner, draft, mailbox=mailbox)
        (handed,) = gmail.sent
    assert handed.startswith(b"Bcc: boss@acme.io\r\nDKIM-Signature:")
    assert verifies(handed, "gmail.test")
    assert raw_bytes(Message.objects.get(pk=sent.message_id)) == handed.split(b"\r\n", 1)[1]


def test_mail_sent_through_graph_is_signed(zone, settings):
    with serve() as graph:
        domain = make_domain(graph.address.split("@")[1], state=State.AUTHENTICATED)
        publish(zone, domain)
        settings.CRMAIL_GRAPH_API_URL = graph.base_url
        owner = f.user(graph.address)
        mailbox = f.api_mailbox("graph", graph.address, graph.add_token(), owner=owner)
        draft = Draft(sender=graph.address, to=["client@example.com"], subject="S", text="T")
        send_message(owner, draft, mailbox=mailbox)
        [handed] = graph.sent
    assert b"DKIM-Signature:" in handed
    assert verifies(handed, domain.name)
