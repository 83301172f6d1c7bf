"""The BCC Dropbox end to end: smtplib sends to the receiver on a loopback port, and the
mail lands on the record SPEC F6 names, or is refused in words."""

from __future__ import annotations

import contextlib
import smtplib
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import pytest
from django.utils import timezone

from crmail.crm.models import Deal
from crmail.dropbox import actions, addresses, queries, receive
from crmail.dropbox.models import Delivery, Refusal
from crmail.dropbox.server import Limits, Receiver
from crmail.linking.models import Link, Reason
from crmail.mail.models import Message
from crmail.mailboxes.models import Mailbox, SentMessage, Source
from crmail.sharing.visibility import visible_messages
from tests import factories as f
from tests.operator import free_port

pytestmark = pytest.mark.django_db(transaction=True)

DOMAIN = "dropbox.crmail.test"


@contextlib.contextmanager
def running(settings, sender_rate: int = 30, per_connection: int = 50) -> Iterator[Receiver]:
    settings.CRMAIL_DROPBOX_DOMAIN = DOMAIN
    receiver = Receiver("127.0.0.1", free_port(), Limits(200_000, sender_rate, per_connection))
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    with running(settings) as started:
        yield started


@pytest.fixture
def rep(receiver):
    user = f.user("rep@crmail.test", name="Rex Rep")
    Mailbox.objects.create(
        owner=user, email="rex@work.test", is_active=True, extra_from_addresses=["sales@work.test"]
    )
    return user


def mail(
    to: str = "ann@acme.test",
    sender: str = "rep@crmail.test",
    subject: str = "Our offer",
    body: str = "Here it is.",
    cc: str = "",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Rex Rep <{sender}>"
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '.')}@work.test>"
    msg["Date"] = "Tue, 01 Dec 2026 10:00:00 +0000"
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP_POLICY)


def send(receiver: Receiver, rcpt: str, raw: bytes, envelope_from: str = "rep@crmail.test"):
    with smtplib.SMTP("127.0.0.1", receiver.port, timeout=30) as client:
        return client.sendmail(envelope_from, [rcpt], raw)


def dropbox_of(user) -> str:
    return addresses.full(addresses.current(user))


def on(module: str, record_id: int) -> list[Link]:
    return list(Link.objects.filter(module=module, record_id=record_id, reason=Reason.BCC_DROPBOX))


def touched(deal: Deal, minutes_ago: int) -> Deal:
    Deal.objects.filter(pk=deal.pk).update(
        modified_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return deal


def test_bcc_to_the_dropbox_lands_on_the_contacts_one_deal(receiver, rep):
    ann = f.contact(rep, "ann@acme.test")
    deal = f.deal(rep, "Acme renewal", contact=ann)
    send(receiver, dropbox_of(rep), mail())

    [link] = on("deals", deal.pk)
    assert link.created_by == rep
    assert on("contacts", ann.pk) == []  # the deal took it; the contact has it by address
    delivery = Delivery.objects.get()
    assert (delivery.filed_as, delivery.correspondent) == ("deal", "ann@acme.test")
    sent = SentMessage.objects.get()
    assert (sent.source, sent.sender, sent.mailbox) == (Source.DROPBOX, rep, None)
    # Shared as mail sent from crmail: a colleague who may see the deal sees it there.
    boss = f.user("boss@crmail.test", role_name="Manager", sharing="private")
    assert list(visible_messages(boss, "deals", deal.pk)) == [link.message]


def test_the_mail_is_on_disk_before_the_sender_is_told_250(receiver, rep, monkeypatch):
    # The sending server lets its copy go at the 250. SQLite syncs its log only at
    # checkpoints, so a power cut right after could take a commit: it is synced first.
    synced = []
    monkeypatch.setattr(receive, "sync_commits", lambda: synced.append(Delivery.objects.count()))
    assert send(receiver, dropbox_of(rep), mail()) == {}
    assert synced == [1]  # once, after the commit that stored it


def test_the_newest_deal_at_probability_0_is_passed_over(receiver, rep):
    ann = f.contact(rep, "ann@acme.test")
    older = touched(f.deal(rep, "Acme pilot", contact=ann), 60)
    touched(f.deal(rep, "Acme lost", stage_name="Closed Lost", contact=ann), 1)
    touched(f.deal(rep, "Acme first try", contact=ann), 600)
    send(receiver, dropbox_of(rep), mail())
    assert [link.record_id for link in Link.objects.filter(reason=Reason.BCC_DROPBOX)] == [older.pk]


def test_with_every_deal_at_probability_0_the_contact_gets_it(receiver, rep):
    ann = f.contact(rep, "ann@acme.test")
    f.deal(rep, "Acme lost", stage_name="Closed Lost", contact=ann)
    f.deal(rep, "Acme lost again", stage_name="Closed Lost", contact=ann)
    send(receiver, dropbox_of(rep), mail())
    [link] = Link.objects.filter(reason=Reason.BCC_DROPBOX)
    assert (link.module, link.record_id) == ("contacts", ann.pk)
    assert Delivery.objects.get().filed_as == "contact"


def test_with_no_deal_the_contact_gets_it(receiver, rep):
    ann = f.contact(rep, "ann@acme.test")
    send(receiver, dropbox_of(rep), mail(to="Ann <ann@acme.test>", cc="rex@work.test"))
    [link] = Link.objects.filter(reason=Reason.BCC_DROPBOX)
    assert (link.module, link.record_id) == ("contacts", ann.pk)


def test_mail_from_a_mailbox_address_and_an_extra_from_address_is_taken(receiver, rep):
    ann = f.contact(rep, "ann@acme.test")
    send(receiver, dropbox_of(rep), mail(sender="rex@work.test"), envelope_from="rex@work.test")
    send(
        receiver,
        dropbox_of(rep),
        mail(sender="sales@work.test", subject="Second"),
        envelope_from="sales@work.test",
    )
    assert len(on("contacts", ann.pk)) == 2


def test_an_unknown_correspondent_is_kept_for_the_sender_unfiled(receiver, rep):
    send(receiver, dropbox_of(rep), mail(to="stranger@elsewhere.test"))
    delivery = Delivery.objects.get()
    assert (delivery.filed_as, delivery.correspondent) == ("unknown", "stranger@elsewhere.test")
    assert not Link.objects.filter(reason=Reason.BCC_DROPBOX).exists()
    message = Message.objects.get()
    assert list(visible_messages(rep)) == [message]  # their own mail, on no record
    assert [d.pk for d in queries.card(rep).recent] == [delivery.pk]
    # A contact made later picks it up by address, as any mail.
    assert Message.objects.get().subject == "Our offer"


def test_an_unknown_sender_is_refused_at_rcpt_and_logged(receiver, rep):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(receiver, dropbox_of(rep), mail(sender="mallory@evil.test"), "mallory@evil.test")
    code, text = refused.value.recipients[dropbox_of(rep)]
    assert code == 550
    assert b"only from its owner's own addresses" in text
    refusal = Refusal.objects.get()
    assert (refusal.stage, refusal.envelope_from, refusal.user) == (
        "rcpt",
        "mallory@evil.test",
        rep,
    )
    assert not Message.objects.exists()


def test_a_forged_from_header_is_refused_at_data(receiver, rep):
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(receiver, dropbox_of(rep), mail(sender="ceo@acme.test"))
    assert refused.value.smtp_code == 550
    assert b"From header must be one of the dropbox owner's own addresses" in (
        refused.value.smtp_error
    )
    assert Refusal.objects.get().header_from == "ceo@acme.test"
    assert not Message.objects.exists()


def test_a_retired_address_is_refused_with_5_1_1(receiver, rep):
    old = dropbox_of(rep)
    actions.regenerate(rep)
    new = dropbox_of(rep)
    assert new != old and new.endswith("@" + DOMAIN) and new.startswith("u-")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(receiver, old, mail())
    code, text = refused.value.recipients[old]
    assert (code, text.split()[0]) == (550, b"5.1.1")
    assert b"replaced by a new one" in text
    send(receiver, new, mail())
    assert Delivery.objects.count() == 1


def test_an_unknown_address_is_refused_with_5_1_1(receiver, rep):
    for wrong in (f"u-nosuchbox@{DOMAIN}", "rep@crmail.test"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(receiver, wrong, mail())
        code, text = refused.value.recipients[wrong]
        assert (code, text.split()[0]) == (550, b"5.1.1")


FORWARDED = """\
Have a look at this, from last year.

---------- Forwarded message ---------
From: Ann Lee <ann@acme.test>
Date: Mon, 3 Nov 2025 at 09:12
Subject: Pricing
To: Rex Rep <rep@crmail.test>

Can you send the price list?
"""


def test_a_forwarded_conversation_is_filed_by_its_first_from_line(receiver, rep):
    ann = f.contact(rep, "ann@acme.test")
    deal = f.deal(rep, "Acme pricing", contact=ann)
    dropbox = dropbox_of(rep)
    send(receiver, dropbox, mail(to=dropbox, subject="Fwd: Pricing", body=FORWARDED))
    assert len(on("deals", deal.pk)) == 1
    delivery = Delivery.objects.get()
    assert (delivery.forwarded, delivery.correspondent) == (True, "ann@acme.test")


def test_a_users_own_pattern_finds_the_correspondent(receiver, rep):
    ann = f.contact(rep, "ann@acme.test")
    actions.set_pattern(rep, r"(?m)^Original sender: (?P<address>\S+)")
    dropbox = dropbox_of(rep)
    body = "FYI\n\nFrom: Rex Rep <rep@crmail.test>\nOriginal sender: ann@acme.test\n"
    send(receiver, dropbox, mail(to=dropbox, subject="Fwd: Old", body=body))
    assert [link.record_id for link in on("contacts", ann.pk)] == [ann.pk]


def test_a_message_past_the_size_limit_is_refused_with_552(receiver, rep):
    big = mail(body="x" * 300_000)
    with pytest.raises(smtplib.SMTPException) as refused:
        send(receiver, dropbox_of(rep), big)
    assert "552" in str(refused.value)
    assert not Message.objects.exists()
    with smtplib.SMTP("127.0.0.1", receiver.port) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "200000"
        assert not client.has_extn("starttls")  # no certificate configured


def test_the_same_mail_twice_is_one_message(receiver, rep):
    f.contact(rep, "ann@acme.test")
    raw = mail()
    send(receiver, dropbox_of(rep), raw)
    send(receiver, dropbox_of(rep), raw)
    assert (Message.objects.count(), SentMessage.objects.count(), Delivery.objects.count()) == (
        1,
        1,
        1,
    )
    assert Link.objects.filter(reason=Reason.BCC_DROPBOX).count() == 1


def two_then_refused(receiver: Receiver, box: str) -> smtplib.SMTPSenderRefused:
    """Two messages on one connection, then the refusal of a third."""
    with smtplib.SMTP("127.0.0.1", receiver.port) as client:
        client.sendmail("rep@crmail.test", [box], mail(subject="one"))
        client.sendmail("rep@crmail.test", [box], mail(subject="two"))
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("rep@crmail.test", [box], mail(subject="three"))
    return refused.value


def test_a_sender_past_the_rate_is_told_to_wait(settings):
    with running(settings, sender_rate=2, per_connection=3) as receiver:
        refused = two_then_refused(receiver, dropbox_of(f.user("rep@crmail.test")))
        assert refused.smtp_code == 451
        assert b"try again in a minute" in refused.smtp_error
        assert Delivery.objects.count() == 2


def test_a_connection_past_its_messages_is_closed_with_421(settings):
    with running(settings, per_connection=2) as receiver:
        box = dropbox_of(f.user("rep@crmail.test"))
        refused = two_then_refused(receiver, box)
        assert refused.smtp_code == 421
        assert b"connect again to send more" in refused.smtp_error
        with smtplib.SMTP("127.0.0.1", receiver.port) as client:  # a new connection may
            client.sendmail("rep@crmail.test", [box], mail(subject="three"))
        assert Delivery.objects.count() == 3


def test_dropbox_mail_is_found_by_source_in_search_lists_and_the_api(receiver, rep, client):
    from crmail.search.queries import search_messages
    from crmail.search.query import parse
    from crmail.sharing.emails import record_emails

    ann = f.contact(rep, "ann@acme.test")
    deal = f.deal(rep, "Acme renewal", contact=ann)
    send(receiver, dropbox_of(rep), mail(subject="Renewal terms"))
    message = Message.objects.get()
    assert [h.message.pk for h in search_messages(rep, parse("source:dropbox")).hits] == [
        message.pk
    ]
    assert search_messages(rep, parse("renewal source:crmail")).hits == []
    assert [m.pk for m in record_emails(rep, "deals", deal.pk, "dropbox")] == [message.pk]
    assert list(record_emails(rep, "deals", deal.pk, "sent")) == []

    headers = {"HTTP_AUTHORIZATION": f"Bearer {f.token(rep)}"}
    found = client.get("/api/v1/search", {"source": "dropbox"}, **headers).json()
    assert [item["id"] for item in found["items"]] == [message.pk]
    listed = client.get(f"/api/v1/deals/{deal.pk}/emails", {"view": "dropbox"}, **headers).json()
    assert [item["id"] for item in listed["items"]] == [message.pk]
    read = client.get(f"/api/v1/messages/{message.pk}", **headers).json()
    assert read["sources"] == ["dropbox"]
    assert {(link["module"], link["reason"]) for link in read["links"]} >= {
        ("deals", "bcc_dropbox")
    }
    [recent] = client.get("/api/v1/dropbox", **headers).json()["recent"]
    assert (recent["message_id"], recent["filed_as"], recent["record_id"]) == (
        message.pk,
        "deal",
        deal.pk,
    )
    bad = client.get("/api/v1/search", {"q": "source:fax"}, **headers)
    assert bad.status_code == 422
    assert "source: takes dropbox or crmail" in bad.content.decode()


def test_a_message_with_a_large_attachment_under_the_limit_is_taken(settings, receiver, rep):
    import random

    msg = EmailMessage()
    msg["From"] = "rep@crmail.test"
    msg["To"] = "ann@acme.test"
    msg["Subject"] = "The brochure"
    msg.set_content("Attached.")
    msg.add_attachment(random.Random(1).randbytes(100_000), maintype="application", subtype="pdf")
    send(receiver, dropbox_of(rep), msg.as_bytes(policy=SMTP_POLICY))
    assert Message.objects.get().has_attachments


def test_a_users_dropbox_rule_acts_on_mail_bccd_to_their_dropbox(receiver, rep):
    from crmail.events import dispatch
    from crmail.mail import tags
    from crmail.workflows import actions as workflow_actions

    dispatch.start_all()
    f.contact(rep, "ann@acme.test")
    workflow_actions.create_workflow(
        by=rep,
        name="Dropbox invoices",
        enabled=True,
        spec={
            "triggers": ["dropbox"],
            "conditions": [{"field": "body", "op": "contains", "values": ["invoice"]}],
            "actions": [{"kind": "tag", "params": {"tags": ["From my dropbox"]}}],
        },
    )
    send(receiver, dropbox_of(rep), mail(subject="The invoice", body="Your invoice."))
    send(receiver, dropbox_of(rep), mail(subject="Hello", body="No bill here."))
    tagged = tags.tags_of(list(Message.objects.values_list("pk", flat=True)))
    by_subject = {m.subject: tagged.get(m.pk, []) for m in Message.objects.all()}
    assert by_subject == {"The invoice": ["From my dropbox"], "Hello": []}


def test_the_sweep_files_what_a_lost_job_left(receiver, rep, monkeypatch):
    from crmail.dropbox import tasks

    ann = f.contact(rep, "ann@acme.test")
    monkeypatch.setattr(tasks, "file_soon", lambda ids: None)  # the job is lost
    send(receiver, dropbox_of(rep), mail())
    assert Delivery.objects.get().filed_at is None
    Delivery.objects.update(received_at=timezone.now() - timedelta(minutes=2))
    tasks.sweep.call_local()
    assert [link.record_id for link in on("contacts", ann.pk)] == [ann.pk]


def test_with_a_certificate_the_receiver_offers_starttls(settings, tmp_path):
    from tests.harness.certs import generate_self_signed

    pair = generate_self_signed(tmp_path)
    settings.CRMAIL_DROPBOX_TLS_CERT = str(pair.cert_path)
    settings.CRMAIL_DROPBOX_TLS_KEY = str(pair.key_path)
    with running(settings) as receiver:
        rep = f.user("rep@crmail.test")
        with smtplib.SMTP("127.0.0.1", receiver.port, timeout=30) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            client.starttls(context=pair.client_context())
            client.sendmail("rep@crmail.test", [dropbox_of(rep)], mail())
        assert Delivery.objects.count() == 1
