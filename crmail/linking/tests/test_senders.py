"""An unknown sender made a Lead or Contact: who the sender is, the prefill, the writing."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from crmail.crm.actions import NotAllowed, RecordInvalid
from crmail.crm.models import Account, Contact, Lead
from crmail.linking import links, queries, senders
from crmail.linking.models import LinkJob
from crmail.linking.tests.mail import ingest, raw_mail
from crmail.mail.parse import parse_message
from crmail.people.models import ModuleDefault
from tests import factories as f

pytestmark = pytest.mark.django_db

SIGNED = """Hello Rex,

could you send us an offer for 40 licences?

Mit freundlichen Grüßen

Hans Müller
Leiter Einkauf
Maschinenbau Schmidt GmbH
Tel. +49 711 123456-0
"""


def mail(sender: str, to: str, text: str = "Hello.") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Offer"
    msg.set_content(text)
    return msg.as_bytes()


def parsed(sender: str, to: str = "rep@crmail.test", text: str = "Hello."):
    return parse_message(mail(sender, to, text))


def test_received_mail_prefills_name_address_and_the_signatures_company():
    encoded = "=?utf-8?q?M=C3=BCller=2C_Hans?= <H.Mueller@Schmidt-Maschinen.de>"
    message = parsed(encoded, text=SIGNED)
    assert senders.prefill(message, "leads", {"rep@crmail.test"}) == {
        "first_name": "Hans",
        "last_name": "Müller",
        "email": "h.mueller@schmidt-maschinen.de",
        "title": "Leiter Einkauf",
        "phone": "+49 711 123456-0",
        "mobile": "",
        "company": "Maschinenbau Schmidt GmbH",
        "source": "Email",
    }
    contact = senders.prefill(message, "contacts", {"rep@crmail.test"})
    assert contact["account_name"] == "Maschinenbau Schmidt GmbH"
    assert "company" not in contact


def test_without_a_signature_the_company_comes_from_the_domain_but_not_from_free_mail():
    assert senders.prefill(parsed("Ada <ada@acme.io>"), "leads")["company"] == "Acme"
    free = senders.prefill(parsed("Ada Lovelace <ada.l@gmail.com>"), "contacts")
    assert (free["first_name"], free["last_name"], free["account_name"]) == ("Ada", "Lovelace", "")


def test_a_name_that_is_the_address_is_left_empty():
    values = senders.prefill(parsed('"ada@acme.io" <ada@acme.io>'), "contacts")
    assert (values["first_name"], values["last_name"]) == ("", "")


def test_mail_the_user_sent_names_its_first_recipient_and_not_the_users_signature():
    own = {"rep@crmail.test"}
    text = "Hi Ada,\n\nhere is the offer.\n\nBest regards,\nRex Rep\nSales Manager\nCrmail Inc.\n"
    to = "Rex <REP@crmail.test>, Ada Byron <ada@acme.io>"
    message = parsed("Rex Rep <rep@crmail.test>", to, text)
    sender = senders.correspondent(message, own)
    assert sender == senders.Sender("ada@acme.io", "Ada Byron", received=False)
    values = senders.prefill(message, "leads", own)
    assert (values["last_name"], values["title"], values["company"]) == ("Byron", "", "Acme")


def test_mail_to_nobody_but_the_user_has_no_sender():
    message = parsed("rep@crmail.test", "rep@crmail.test")
    assert senders.correspondent(message, {"rep@crmail.test"}) is None
    with pytest.raises(senders.NoSender):
        senders.prefill(message, "contacts", {"rep@crmail.test"})


def test_a_sender_is_known_only_through_records_the_user_may_see(org):
    message = parsed("Ada <Ada@Acme.io>")
    assert senders.unknown_sender(message, org.rep) is not None
    f.contact(org.outsider_manager, "ada@acme.io")  # private to another branch
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "private"})
    assert senders.unknown_sender(message, org.rep) is not None
    lead = f.lead(org.rep, "ADA@acme.io")
    assert senders.unknown_sender(message, org.rep) is None
    assert senders.known_records(org.rep, "ada@acme.io") == [lead]


def test_creating_a_contact_links_the_senders_past_mail_at_once(
    org, django_capture_on_commit_callbacks
):
    past = ingest(
        raw_mail("Ada <ada@acme.io>", ["rep@crmail.test"]),
        raw_mail("rep@crmail.test", ["ADA@acme.io"]),
        raw_mail("other@acme.io", ["someone@else.test"], cc=["ada@acme.io"]),
        raw_mail("other@acme.io", ["someone@else.test"]),
    )
    sender = senders.correspondent(parse_message(mail("Ada <ada@acme.io>", "rep@crmail.test")))
    with django_capture_on_commit_callbacks(execute=True):
        contact = senders.create_from_sender(
            org.rep, sender, "contacts", {"last_name": "Byron"}, account_name="Acme"
        )
    assert not LinkJob.objects.exists()  # little mail: linked in the request itself
    assert isinstance(contact, Contact) and contact.primary_email == "ada@acme.io"
    on = set(queries.messages_for_record("contacts", contact.pk).values_list("pk", flat=True))
    assert on == {past[0].pk, past[1].pk, past[2].pk}
    assert contact.account.name == "Acme" and contact.account.domain == "acme.io"


def test_much_past_mail_is_linked_by_a_job(org, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(links, "INLINE_LIMIT", 2)
    past = ingest(*(raw_mail("ada@acme.io", ["rep@crmail.test"]) for _ in range(3)))
    sender = senders.Sender("ada@acme.io", "Ada", received=True)
    with django_capture_on_commit_callbacks(execute=True):
        lead = senders.create_from_sender(org.rep, sender, "leads", {"last_name": "Byron"})
    job = LinkJob.objects.get(module="leads", record_id=lead.pk)
    assert (job.total, job.state) == (3, "done")  # the test queue runs jobs at once
    on = set(queries.messages_for_record("leads", lead.pk).values_list("pk", flat=True))
    assert on == {m.pk for m in past}


def test_an_account_the_user_sees_by_that_name_is_chosen_not_made_again(org):
    acme = f.account(org.rep, "ACME")
    sender = senders.Sender("ada@acme.io", "Ada", received=True)
    contact = senders.create_from_sender(
        org.rep, sender, "contacts", {"last_name": "Byron"}, account_name=" acme "
    )
    assert contact.account_id == acme.pk
    assert Account.objects.count() == 1


def test_a_free_mail_senders_new_account_gets_no_domain(org):
    sender = senders.Sender("ada@gmail.com", "Ada", received=True)
    contact = senders.create_from_sender(
        org.rep, sender, "contacts", {"last_name": "Byron"}, account_name="Byron Consulting"
    )
    assert (contact.account.name, contact.account.domain) == ("Byron Consulting", "")


def test_a_sender_known_meanwhile_is_not_made_twice(org):
    jane = f.contact(org.rep, "ada@acme.io")
    sender = senders.Sender("ada@acme.io", "Ada", received=True)
    with pytest.raises(senders.AlreadyKnown) as known:
        senders.create_from_sender(org.rep, sender, "leads", {"last_name": "Byron"})
    assert known.value.record == jane
    assert not Lead.objects.exists()


def test_an_invalid_contact_makes_no_account_either(org):
    sender = senders.Sender("ada@acme.io", "Ada", received=True)
    with pytest.raises(RecordInvalid) as invalid:
        senders.create_from_sender(
            org.rep, sender, "contacts", {"last_name": ""}, account_name="Acme"
        )
    assert [e["field"] for e in invalid.value.errors] == ["last_name"]
    assert not Account.objects.exists() and not Contact.objects.exists()


def test_a_user_who_may_not_create_accounts_cannot_have_one_made(org):
    profile = org.rep.profile
    profile.permissions = {**profile.permissions, "accounts": ["view"]}
    profile.save()
    sender = senders.Sender("ada@acme.io", "Ada", received=True)
    with pytest.raises(NotAllowed):
        senders.create_from_sender(
            org.rep, sender, "contacts", {"last_name": "Byron"}, account_name="Acme"
        )
    assert not Contact.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_past_mail_is_on_the_new_contact_when_the_call_returns_even_with_a_busy_queue():
    """With a real queue the consumers run in a worker, later; making a record from a
    sender still links its past mail before the page that follows reads it."""
    from django.conf import settings

    rep = f.user("rep@crmail.test")
    huey = settings.HUEY
    huey.immediate = False
    try:
        (past,) = ingest(raw_mail("Ada <ada@acme.io>", ["rep@crmail.test"]))
        sender = senders.correspondent(parse_message(mail("Ada <ada@acme.io>", "rep@crmail.test")))
        contact = senders.create_from_sender(rep, sender, "contacts", {"last_name": "Byron"})
        on = set(queries.messages_for_record("contacts", contact.pk).values_list("pk", flat=True))
        assert on == {past.pk}
    finally:
        huey.flush()
        huey.immediate = True
