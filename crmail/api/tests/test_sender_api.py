"""``/messages/{id}/sender``: an unknown sender's prefill, and the record made from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.crm.models import Account, Contact, Lead
from crmail.linking.models import Link
from crmail.mail.models import Message
from crmail.people.models import Profile, User, full_permissions
from crmail.sharing import actions as sharing
from crmail.sharing.visibility import visible_messages
from crmail.web.tests.mail_samples import deliver
from tests import factories as f

pytestmark = pytest.mark.django_db

CLAIRE = "claire.dubois@lumiere-conseil.fr"
SIGNED = """Bonjour,

Je vous confirme notre rendez-vous de jeudi.

Cordialement,
--\x20
Claire Dubois
Directrice commerciale | Lumière Conseil SARL
Tél. : +33 1 42 68 53 00
Portable : +33 6 12 34 56 78
"""


def mail(sender: str, to: str, subject: str, text: str = "Bonjour.") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    msg.set_content(text)
    return msg.as_bytes()


@dataclass
class Scene:
    rep: User
    api: ApiClient
    note: Message  # Claire's, in the rep's mailbox
    earlier: Message  # Claire's, in the rep's mailbox
    private: Message  # Claire's to the peer, whose mail is private


@pytest.fixture
def s(org, django_capture_on_commit_callbacks) -> Scene:  # type: ignore[no-untyped-def]
    for user in (org.rep, org.peer):
        sharing.set_sharing(None, user, mode="private")
    with django_capture_on_commit_callbacks(execute=True):
        note = deliver(org.rep, mail(f"Claire DUBOIS <{CLAIRE}>", org.rep.email, "RDV", SIGNED))
        earlier = deliver(org.rep, mail(CLAIRE, org.rep.email, "Première prise de contact"))
        private = deliver(org.peer, mail(CLAIRE, org.peer.email, "Pour Pia seulement"))
    return Scene(org.rep, ApiClient(org.rep), note, earlier, private)


def test_the_prefill_of_a_contact_and_of_a_lead(s):
    answer = s.api.get(f"/messages/{s.note.pk}/sender", {"module": "contacts"})
    assert answer.status_code == 200
    assert answer.json() == {
        "module": "contacts",
        "received": True,
        "known": [],
        "first_name": "Claire",
        "last_name": "Dubois",
        "email": CLAIRE,
        "title": "Directrice commerciale",
        "phone": "+33 1 42 68 53 00",
        "mobile": "+33 6 12 34 56 78",
        "company": None,
        "source": None,
        "account_name": "Lumière Conseil SARL",
        "account_id": None,
    }
    lead = s.api.get(f"/messages/{s.note.pk}/sender", {"module": "leads"}).json()
    assert (lead["company"], lead["source"], lead["account_name"]) == (
        "Lumière Conseil SARL",
        "Email",
        None,
    )
    account = f.account(s.rep, "Lumière Conseil SARL")
    again = s.api.get(f"/messages/{s.note.pk}/sender", {"module": "contacts"}).json()
    assert again["account_id"] == account.pk


def test_a_message_the_caller_may_not_see_is_not_found(s):
    for module in ("contacts", "leads"):
        answer = s.api.get(f"/messages/{s.private.pk}/sender", {"module": module})
        assert answer.status_code == 404 and answer.json() == {"detail": "Not found."}
    assert s.api.post(f"/messages/{s.private.pk}/sender", {"module": "leads"}).status_code == 404
    assert not Lead.objects.exists()


def test_bad_input_is_named(s):
    assert fields(s.api.get(f"/messages/{s.note.pk}/sender")) == {"module"}
    bad = s.api.get(f"/messages/{s.note.pk}/sender", {"module": "accounts"})
    assert bad.status_code == 422 and fields(bad) == {"module"}
    wrong = s.api.post(f"/messages/{s.note.pk}/sender", {"module": "leads", "account_id": 1})
    assert wrong.status_code == 422 and fields(wrong) == {"account_id"}
    wrong = s.api.post(f"/messages/{s.note.pk}/sender", {"module": "contacts", "company": "X"})
    assert wrong.status_code == 422 and fields(wrong) == {"company"}
    invalid = s.api.post(f"/messages/{s.note.pk}/sender", {"module": "leads", "email": "no"})
    assert invalid.status_code == 422 and fields(invalid) == {"email"}
    assert not Lead.objects.exists()


def test_creating_a_contact_links_its_past_mail_but_shows_only_what_the_caller_may_see(
    s, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answer = s.api.post(
            f"/messages/{s.note.pk}/sender",
            {"module": "contacts", "account_name": "Lumière Conseil SARL", "phone": "01 02"},
        )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    contact = Contact.objects.get()
    assert body["id"] == contact.pk and body["account_id"] == contact.account_id
    assert (body["name"], body["email"], body["title"], body["phone"]) == (
        "Claire Dubois",
        CLAIRE,
        "Directrice commerciale",
        "01 02",
    )
    assert Account.objects.get().name == "Lumière Conseil SARL"
    linked = set(
        Link.objects.filter(module="contacts", record_id=contact.pk).values_list(
            "message_id", flat=True
        )
    )
    assert linked == {s.note.pk, s.earlier.pk, s.private.pk}
    emails = s.api.get(f"/contacts/{contact.pk}/emails").json()
    assert {item["id"] for item in emails["items"]} == {s.note.pk, s.earlier.pk}
    assert emails["count"] == 2
    assert set(visible_messages(s.rep, "contacts", contact.pk).values_list("pk", flat=True)) == {
        s.note.pk,
        s.earlier.pk,
    }


def test_no_account_is_made_unless_named(s):
    answer = s.api.post(f"/messages/{s.note.pk}/sender", {"module": "contacts"})
    assert answer.status_code == 201 and answer.json()["account_id"] is None
    assert not Account.objects.exists()


def test_a_lead_with_fields_given_over_the_prefill(s):
    answer = s.api.post(
        f"/messages/{s.earlier.pk}/sender",
        {"module": "leads", "last_name": "Dubois", "status": "contacted"},
    )
    assert answer.status_code == 201
    body = answer.json()
    assert (body["last_name"], body["status"], body["company"], body["source"]) == (
        "Dubois",
        "contacted",
        "Lumiere-Conseil",  # no signature in this one: the domain's name
        "Email",
    )


def test_a_known_sender_answers_409_naming_the_record(s):
    claire = f.contact(s.rep, CLAIRE.upper())
    prefill = s.api.get(f"/messages/{s.note.pk}/sender", {"module": "leads"}).json()
    assert prefill["known"] == [{"module": "contacts", "id": claire.pk, "name": str(claire)}]
    answer = s.api.post(f"/messages/{s.note.pk}/sender", {"module": "leads"})
    assert answer.status_code == 409
    assert f"/api/v1/contacts/{claire.pk}" in answer.json()["detail"]
    assert not Lead.objects.exists()


def test_a_module_the_caller_may_not_create_is_forbidden(s):
    profile = Profile.objects.create(
        name="Leads read only", permissions={**full_permissions(), "leads": ["view"]}
    )
    User.objects.filter(pk=s.rep.pk).update(profile=profile)
    answer = s.api.post(f"/messages/{s.note.pk}/sender", {"module": "leads"})
    assert answer.status_code == 403 and "You may not create leads" in answer.json()["detail"]
    assert not Lead.objects.exists()
