"""Making an unknown sender a Contact or Lead from the message page, with their past mail."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from django.test import Client

from crmail.crm.models import Account, Contact, Lead
from crmail.linking.models import Link, LinkJob
from crmail.mail.models import Message
from crmail.people.models import ModuleDefault, Profile, User, full_permissions
from crmail.sharing import actions as sharing
from crmail.web.tests.mail_samples import deliver
from tests import factories as f

pytestmark = pytest.mark.django_db

HANS = "h.mueller@schmidt-maschinen.de"
SIGNED = """Hallo Herr Rep,

könnten Sie uns ein Angebot für 40 Lizenzen schicken?

Mit freundlichen Grüßen

Hans Müller
Leiter Einkauf
Maschinenbau Schmidt GmbH
Tel. +49 711 123456-0

-----Ursprüngliche Nachricht-----
Von: Rex Rep <rep@crmail.test>
"""


def mail(sender: str, to: str, subject: str, text: str = "Hello.", day: int = 1) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 3, day, 9, 30, tzinfo=UTC))
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@schmidt.example>"
    msg.set_content(text)
    return msg.as_bytes()


@dataclass
class Scene:
    rep: User
    peer: User
    offer: Message  # Hans's request, in the rep's mailbox
    earlier: Message  # an earlier one of his, in the rep's mailbox
    answer: Message  # the rep's answer to him, in the rep's mailbox
    private: Message  # Hans's mail to the peer, whose mail is private


@pytest.fixture
def s(org, django_capture_on_commit_callbacks) -> Scene:  # type: ignore[no-untyped-def]
    for user in (org.rep, org.peer):
        sharing.set_sharing(None, user, mode="private")
    hans = f"=?utf-8?q?M=C3=BCller=2C_Hans?= <{HANS}>"
    with django_capture_on_commit_callbacks(execute=True):
        return Scene(
            rep=org.rep,
            peer=org.peer,
            offer=deliver(org.rep, mail(hans, "Rex Rep <rep@crmail.test>", "Angebot", SIGNED, 3)),
            earlier=deliver(org.rep, mail(hans, "rep@crmail.test", "Erste Anfrage", day=1)),
            answer=deliver(org.rep, mail("rep@crmail.test", HANS, "Re Anfrage", day=2)),
            private=deliver(org.peer, mail(hans, "peer@crmail.test", "Nur fuer Pia", day=4)),
        )


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(message: Message, module: str) -> str:
    return f"/messages/{message.pk}/sender/{module}/"


def value_of(page: str, name: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert found, name
    value = re.search(r'value="([^"]*)"', found[0])
    return value[1] if value else ""


def test_the_message_page_offers_to_add_an_unknown_sender(s):
    page = signed_in(s.rep).get(f"/messages/{s.offer.pk}/").content.decode()
    assert f'href="{url(s.offer, "contacts")}">Add as contact</a>' in page
    assert f'href="{url(s.offer, "leads")}">Add as lead</a>' in page


def test_mail_the_user_sent_offers_its_recipient(s):
    page = signed_in(s.rep).get(f"/messages/{s.answer.pk}/").content.decode()
    to = page.split("<dt>To</dt>")[1].split("</dd>")[0]
    assert "Add as contact" in to and url(s.answer, "contacts") in to
    assert "Add as" not in page.split("<dt>To</dt>")[0]


def test_no_offer_for_a_known_sender_nor_a_module_the_user_may_not_create(s):
    profile = Profile.objects.create(
        name="No leads", permissions={**full_permissions(), "leads": ["view"]}
    )
    User.objects.filter(pk=s.rep.pk).update(profile=profile)
    s.rep.refresh_from_db()
    page = signed_in(s.rep).get(f"/messages/{s.offer.pk}/").content.decode()
    assert "Add as contact" in page and "Add as lead" not in page
    f.lead(s.rep, HANS.upper())
    page = signed_in(s.rep).get(f"/messages/{s.offer.pk}/").content.decode()
    assert "Add as" not in page


def test_the_form_is_filled_in_from_the_message_and_its_signature(s):
    page = signed_in(s.rep).get(url(s.offer, "contacts")).content.decode()
    assert "New contact from h.mueller@schmidt-maschinen.de" in page
    assert value_of(page, "first_name") == "Hans"
    assert value_of(page, "last_name") == "Müller"
    assert value_of(page, "email") == HANS
    assert value_of(page, "title") == "Leiter Einkauf"
    assert value_of(page, "phone") == "+49 711 123456-0"
    assert value_of(page, "new_account") == "Maschinenbau Schmidt GmbH"
    lead = signed_in(s.rep).get(url(s.offer, "leads")).content.decode()
    assert value_of(lead, "company") == "Maschinenbau Schmidt GmbH"
    assert value_of(lead, "source") == "Email"


def test_an_account_of_that_name_the_user_sees_is_chosen(s):
    account = f.account(s.rep, "maschinenbau schmidt gmbh")
    f.account(s.peer, "Maschinenbau Schmidt GmbH")  # also visible; the oldest is chosen
    page = signed_in(s.rep).get(url(s.offer, "contacts")).content.decode()
    assert f'<option value="{account.pk}" selected>' in page
    assert value_of(page, "new_account") == ""
    assert "is chosen because its name matches" in page


@pytest.mark.django_db(transaction=True)  # the links are written when the writing commits
def test_saving_makes_the_contact_and_account_and_links_only_visible_mail_to_see(s):
    client = signed_in(s.rep)
    form = client.get(url(s.offer, "contacts")).content.decode()
    data = {
        name: value_of(form, name)
        for name in ("first_name", "last_name", "email", "title", "phone", "new_account")
    }
    answer = client.post(url(s.offer, "contacts"), data | {"owner": s.rep.pk})
    contact = Contact.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/contacts/{contact.pk}/"
    assert contact.account.name == "Maschinenbau Schmidt GmbH"
    assert contact.account.domain == "schmidt-maschinen.de"
    # Every message with the address is on the contact: the peer's too (for those who
    # may see it), yet the rep sees only the three of the rep's own mailbox.
    linked = set(
        Link.objects.filter(module="contacts", record_id=contact.pk).values_list(
            "message_id", flat=True
        )
    )
    assert linked == {s.offer.pk, s.earlier.pk, s.answer.pk, s.private.pk}
    page = client.get(answer["Location"]).content.decode()
    assert "The contact Hans Müller was created, with 3 messages you can see" in page
    for subject in ("Angebot", "Erste Anfrage", "Re Anfrage"):
        assert subject in page
    assert "Nur fuer Pia" not in page
    ModuleDefault.objects.update_or_create(
        module="contacts", defaults={"level": "public_read"}
    )  # the peer sees the contact, with the peer's own mail on it and not the rep's
    peer_page = signed_in(s.peer).get(f"/contacts/{contact.pk}/").content.decode()
    assert "Nur fuer Pia" in peer_page and "Angebot" not in peer_page


def test_a_lead_is_made_with_its_company(s, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = signed_in(s.rep).post(
            url(s.earlier, "leads"),
            {"last_name": "Müller", "email": HANS, "company": "Schmidt", "owner": s.rep.pk},
        )
    lead = Lead.objects.get()
    assert answer["Location"] == f"/leads/{lead.pk}/"
    assert (lead.company, lead.primary_email) == ("Schmidt", HANS)
    assert Link.objects.filter(module="leads", record_id=lead.pk).count() == 4
    assert not Account.objects.exists()


def test_an_invalid_form_comes_back_with_its_errors_and_makes_nothing(s):
    page = signed_in(s.rep).post(
        url(s.offer, "contacts"), {"last_name": "", "email": "not an address", "new_account": "X"}
    )
    text = page.content.decode()
    assert page.status_code == 200
    assert "Please correct the following" in text and "not a valid email address" in text
    assert not Contact.objects.exists() and not Account.objects.exists()


def test_a_sender_known_meanwhile_is_shown_not_made_again(s):
    client = signed_in(s.rep)
    jane = f.contact(s.rep, HANS, first_name="Hans", last_name="Müller")
    page = client.post(url(s.offer, "leads"), {"last_name": "Müller", "email": HANS})
    text = page.content.decode()
    assert page.status_code == 200
    assert f"{HANS} is already in crmail" in text
    assert f'href="/contacts/{jane.pk}/"' in text
    assert not Lead.objects.exists()
    assert "already in crmail" in client.get(url(s.offer, "contacts")).content.decode()


def test_who_may_do_it(s):
    rep = signed_in(s.rep)
    assert rep.get(url(s.private, "contacts")).status_code == 404  # the peer's private mail
    assert rep.post(url(s.private, "contacts"), {"last_name": "X"}).status_code == 404
    assert rep.get(f"/messages/{s.offer.pk}/sender/accounts/").status_code == 404
    assert rep.get(f"/messages/{s.offer.pk}/sender/deals/").status_code == 404
    assert rep.get(f"/messages/{s.offer.pk + 1000}/sender/leads/").status_code == 404
    profile = Profile.objects.create(
        name="Read only", permissions={**full_permissions(), "contacts": ["view"]}
    )
    User.objects.filter(pk=s.rep.pk).update(profile=profile)
    answer = signed_in(s.rep).post(url(s.offer, "contacts"), {"last_name": "X"})
    assert answer.status_code == 403
    assert not Contact.objects.exists()


def test_without_leave_to_create_accounts_no_new_account_is_offered(s):
    profile = Profile.objects.create(
        name="No accounts", permissions={**full_permissions(), "accounts": ["view"]}
    )
    User.objects.filter(pk=s.rep.pk).update(profile=profile)
    client = signed_in(s.rep)
    page = client.get(url(s.offer, "contacts")).content.decode()
    assert 'name="new_account"' not in page
    answer = client.post(
        url(s.offer, "contacts"), {"last_name": "Müller", "email": HANS, "new_account": "Sneaky"}
    )
    assert answer.status_code == 302
    assert Contact.objects.get().account is None and not Account.objects.exists()


def test_a_contacts_page_shows_the_background_linking_while_it_runs(s):
    contact = f.contact(s.rep, HANS)
    job = LinkJob.objects.create(
        module="contacts", record_id=contact.pk, addresses=[HANS], total=5000, done=2000
    )
    client = signed_in(s.rep)
    LinkJob.objects.filter(pk=job.pk).update(state="running")
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "crmail is linking the past mail of this contact: 40% done." in page
    LinkJob.objects.filter(pk=job.pk).update(state="done", done=5000)
    assert "crmail is linking" not in client.get(f"/contacts/{contact.pk}/").content.decode()
