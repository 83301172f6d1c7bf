"""Creating and changing records through the one writer, as every entry point does."""

from __future__ import annotations

import pytest

from crmail.crm import actions
from crmail.crm.models import Account, Contact, Deal, EmailAddress, Stage
from tests import factories as f

pytestmark = pytest.mark.django_db


def fields(err: actions.RecordInvalid) -> set[str]:
    return {e["field"] for e in err.errors}


def test_contact_addresses_are_stored_lower_case_and_found_case_insensitively(org):
    contact = actions.create_record(
        org.rep,
        "contacts",
        {
            "last_name": "Lovelace",
            "email": " Ada@Example.COM ",
            "secondary_emails": "ada.l@Work.example; ADA@home.example",
        },
    )
    assert contact.primary_email == "ada@example.com"
    assert contact.secondary_emails == ["ada.l@work.example", "ada@home.example"]
    assert EmailAddress.objects.get(address="ada@home.example").contact == contact
    assert contact.owner == org.rep and contact.created_by == org.rep


def test_an_invalid_address_is_refused_naming_the_field(org):
    with pytest.raises(actions.RecordInvalid) as err:
        actions.create_record(org.rep, "contacts", {"last_name": "X", "email": "not-an-address"})
    assert fields(err.value) == {"email"}
    assert "not-an-address" in str(err.value)
    assert not Contact.objects.exists()


def test_header_injection_in_an_address_is_refused(org):
    with pytest.raises(actions.RecordInvalid) as err:
        actions.create_record(
            org.rep, "contacts", {"last_name": "X", "email": "a@b.example\r\nBcc: c@d.example"}
        )
    assert fields(err.value) == {"email"}


def test_partial_update_keeps_other_fields_and_swaps_primary(org):
    contact = actions.create_record(
        org.rep,
        "contacts",
        {
            "last_name": "Hopper",
            "title": "Admiral",
            "email": "grace@navy.example",
            "secondary_emails": "grace@yale.example",
        },
    )
    actions.update_record(
        org.rep, contact, {"email": "grace@yale.example", "secondary_emails": "grace@navy.example"}
    )
    contact.refresh_from_db()
    assert contact.title == "Admiral"
    assert contact.primary_email == "grace@yale.example"
    assert contact.secondary_emails == ["grace@navy.example"]


def test_removing_a_secondary_address_deletes_it(org):
    contact = f.contact(org.rep, "a@x.example", secondary=("b@x.example",))
    actions.update_record(org.rep, contact, {"secondary_emails": ""})
    assert list(contact.emails.values_list("address", flat=True)) == ["a@x.example"]


def test_a_record_cannot_be_attached_to_an_account_the_user_may_not_see(org):
    hidden = f.account(org.peer, "Peer Corp")
    with pytest.raises(actions.RecordInvalid) as err:
        actions.create_record(org.rep, "contacts", {"last_name": "X", "account": hidden.pk})
    assert fields(err.value) == {"account"}


def test_editing_a_record_the_user_may_not_see_is_refused(org):
    contact = f.contact(org.peer)
    with pytest.raises(actions.NotAllowed):
        actions.update_record(org.rep, contact, {"last_name": "Changed"})
    contact.refresh_from_db()
    assert contact.last_name != "Changed"


def test_deleting_follows_hierarchy(org):
    contact = f.contact(org.rep)
    with pytest.raises(actions.NotAllowed):
        actions.delete_record(org.peer, contact)
    actions.delete_record(org.manager, contact)
    assert not Contact.objects.filter(pk=contact.pk).exists()


def test_deal_defaults_to_the_default_pipeline_and_checks_the_stage(org):
    stage = Stage.objects.get(name="Qualification")
    deal = actions.create_record(
        org.rep, "deals", {"name": "Big one", "stage": stage.pk, "amount": "1200.50"}
    )
    assert deal.pipeline.is_default and str(deal.amount) == "1200.50"

    from crmail.crm.models import Pipeline

    other = Pipeline.objects.create(name="Renewals")
    foreign = Stage.objects.create(pipeline=other, name="Renew", probability=50)
    with pytest.raises(actions.RecordInvalid) as err:
        actions.create_record(org.rep, "deals", {"name": "Wrong", "stage": foreign.pk})
    assert fields(err.value) == {"stage"}
    with pytest.raises(actions.RecordInvalid) as err:
        actions.create_record(org.rep, "deals", {"name": "Neg", "stage": stage.pk, "amount": "-5"})
    assert fields(err.value) == {"amount"}
    assert Deal.objects.count() == 1


def test_account_domain_comes_from_the_website(org):
    account = actions.create_record(
        org.rep, "accounts", {"name": "Acme", "website": "https://www.Acme.com/about"}
    )
    assert account.domain == "acme.com"
    with pytest.raises(actions.RecordInvalid) as err:
        actions.create_record(org.rep, "accounts", {"name": "Bad", "domain": "not a domain"})
    assert fields(err.value) == {"domain"}
    assert Account.objects.count() == 1


def test_a_lead_without_status_is_new_and_a_deal_without_stage_starts_at_the_first(org):
    lead = actions.create_record(org.rep, "leads", {"last_name": "Fresh"})
    assert lead.status == "new"
    deal = actions.create_record(org.rep, "deals", {"name": "No stage given"})
    assert deal.stage.name == "Qualification"


def test_an_invalid_primary_address_gives_one_error_only(org):
    with pytest.raises(actions.RecordInvalid) as err:
        actions.create_record(
            org.rep,
            "contacts",
            {"last_name": "X", "email": "bad", "secondary_emails": "a@b.example"},
        )
    assert len(err.value.errors) == 1
