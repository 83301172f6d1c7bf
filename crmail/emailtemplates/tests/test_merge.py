"""Merge fields: every listed field filled from the record and its sender, nothing else."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from crmail.emailtemplates import merge
from crmail.emailtemplates.merge import MergeError, records_for, render_template
from tests import factories as f

pytestmark = pytest.mark.django_db

EVERY_FIELD = " | ".join(name for name, _words in merge.field_list())


def world(org):  # type: ignore[no-untyped-def]
    org.rep.signature = "Rex Rep\nSales, Acme"
    org.rep.save(update_fields=["signature"])
    account = f.account(org.rep, "Initech", website="initech.example", phone="+1 555 0100")
    contact = f.contact(
        org.rep,
        "grace@initech.example",
        first_name="Grace",
        last_name="Hopper",
        title="CTO",
        phone="+1 555 0101",
        account=account,
    )
    deal = f.deal(
        org.rep,
        "Initech renewal",
        amount=Decimal("12500"),
        closing_date=datetime.date(2026, 12, 24),
        contact=contact,
    )
    lead = f.lead(
        org.rep,
        "ada@lovelace.example",
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical Engines",
        title="Founder",
        phone="+44 20 0000",
    )
    return account, contact, deal, lead


def test_a_deal_merges_itself_its_contact_its_contacts_account_and_the_sender(org):
    _account, _contact, deal, _lead = world(org)
    text = (
        "{{Contact.first_name}} {{Contact.last_name}} ({{Contact.full_name}}) "
        "<{{Contact.email}}> {{Contact.title}} {{Contact.phone}} / {{Account.name}} "
        "{{Account.website}} {{Account.phone}} / {{Deal.name}} {{ Deal.amount }} "
        "{{Deal.closing_date}} / {{User.name}} {{User.email}}\n{{User.signature}}"
    )
    done = render_template("About {{Deal.name}}", text, records_for(org.rep, deal))
    assert done.subject == "About Initech renewal"
    assert done.body == (
        "Grace Hopper (Grace Hopper) <grace@initech.example> CTO +1 555 0101 / Initech "
        "initech.example +1 555 0100 / Initech renewal 12,500.00 24 Dec 2026 / "
        "Rex Rep rep@crmail.test\nRex Rep\nSales, Acme"
    )


def test_a_lead_merges_its_own_fields(org):
    *_, lead = world(org)
    done = render_template(
        "",
        "{{Lead.first_name}} {{Lead.last_name}} {{Lead.full_name}} {{Lead.email}} "
        "{{Lead.title}} {{Lead.phone}} {{Lead.company}}",
        records_for(org.rep, lead),
    )
    assert done.body == (
        "Ada Lovelace Ada Lovelace ada@lovelace.example Founder +44 20 0000 Analytical Engines"
    )


def test_a_contact_merges_its_account(org):
    _account, contact, _deal, _lead = world(org)
    done = render_template(
        "Hi {{Contact.first_name}}", "{{Account.name}}", records_for(org.rep, contact)
    )
    assert (done.subject, done.body) == ("Hi Grace", "Initech")


def test_the_list_covers_every_field_the_merge_knows(org):
    names = [name for name, _ in merge.field_list()]
    assert "{{Contact.first_name}}" in names and "{{User.signature}}" in names
    assert len(names) == sum(len(fields) for fields in merge.FIELDS.values())
    assert merge.unknown_fields(EVERY_FIELD) == []


@pytest.mark.parametrize(
    "field",
    [
        "Contact.owner.password",
        "Contact.owner",
        "User.password",
        "Contact.__class__",
        "contact.first_name",
        "Deal",
        "",
        "Contact.first_name|upper",
    ],
)
def test_an_unknown_field_is_an_error_naming_it(org, field):
    _account, contact, *_ = world(org)
    with pytest.raises(MergeError) as caught:
        render_template("Hi", f"Dear {{{{{field}}}}},", records_for(org.rep, contact))
    assert caught.value.part == "body"
    assert "{{" + field + "}}" in str(caught.value)


def test_text_that_is_not_a_field_stays_as_it_is(org):
    done = render_template("{ one } {{ two", "{% if x %}{{ y", records_for(org.rep, None))
    assert (done.subject, done.body) == ("{ one } {{ two", "{% if x %}{{ y")


def test_a_line_break_merged_into_the_subject_is_refused(org):
    world(org)
    with pytest.raises(MergeError) as caught:
        render_template("Hi from {{User.signature}}", "", records_for(org.rep, None))
    assert caught.value.part == "subject" and "line break" in str(caught.value)


def test_a_field_whose_record_is_missing_names_the_field_and_the_record(org):
    _account, contact, *_ = world(org)
    with pytest.raises(MergeError) as caught:
        render_template("", "{{Deal.amount}}", records_for(org.rep, contact))
    message = str(caught.value)
    assert "{{Deal.amount}}" in message and "Grace Hopper" in message and "a deal" in message


def test_a_related_record_the_sender_may_not_see_is_not_merged(org):
    # The deal is the rep's peer's, opened to the rep; its contact stays the peer's own.
    from crmail.people.models import AccessLevel, ModuleDefault

    ModuleDefault.objects.update_or_create(
        module="deals", defaults={"level": AccessLevel.PUBLIC_READ}
    )
    secret = f.contact(org.peer, "hidden@else.example", first_name="Hidden")
    deal = f.deal(org.peer, "Peer deal", contact=secret)
    records = records_for(org.rep, deal)
    assert records.contact is None
    assert render_template("", "{{Deal.name}}", records).body == "Peer deal"
    with pytest.raises(MergeError) as caught:
        render_template("", "{{Contact.first_name}}", records)
    assert "Hidden" not in str(caught.value) and "{{Contact.first_name}}" in str(caught.value)


def test_a_record_reference_is_found_only_when_the_sender_may_see_it(org):
    mine = f.contact(org.rep, first_name="Mine")
    theirs = f.contact(org.peer, first_name="Theirs")
    assert merge.parse_record_ref(f"contacts:{mine.pk}") == ("contacts", mine.pk)
    assert merge.parse_record_ref("contacts:x") is None
    assert merge.parse_record_ref("users:1") is None
    assert merge.find_record(org.rep, "contacts", mine.pk) == mine
    assert merge.find_record(org.rep, "contacts", theirs.pk) is None
    assert merge.find_record(org.manager, "contacts", theirs.pk) == theirs
