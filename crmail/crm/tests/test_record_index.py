"""The trigram index behind record search stays true as records and addresses are created,
renamed and deleted (on SQLite it is an FTS5 table kept by triggers; on PostgreSQL an
index the database keeps): the candidates of a word always include every record holding it."""

from __future__ import annotations

import pytest
from django.db import connection

from crmail.crm import record_index
from crmail.crm.models import Account, Contact, Deal, EmailAddress, Lead
from tests import factories as f

pytestmark = pytest.mark.django_db

TABLES = ("crm_lead", "crm_contact", "crm_account", "crm_deal", "crm_emailaddress")


def found(model, word: str) -> set[int]:  # type: ignore[no-untyped-def]
    ids = record_index.candidates(model, [word])
    assert ids is not None  # a few records: never "common"
    return set(ids)


def assert_index_matches_tables() -> None:
    """SQLite's own check: each FTS5 table holds exactly its table's current text."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for table in TABLES:
            fts = f"{table}_search"
            cursor.execute(f"INSERT INTO {fts}({fts}) VALUES ('integrity-check')")


def test_records_are_found_after_create_rename_and_delete(org):
    contact = f.contact(org.rep, first_name="Zebulon", last_name="Quaxley")
    lead = f.lead(org.rep, company="Vexworth Trading")
    account = f.account(org.rep, "Brightwater GmbH", domain="brightwater.example")
    deal = f.deal(org.rep, "Glimmerfield renewal", account=account)
    assert found(Contact, "zebul") == {contact.pk}
    assert found(Lead, "VEXWORTH") == {lead.pk}
    assert found(Account, "brightwater.exam") == {account.pk}
    assert found(Deal, "glimmer") == {deal.pk}
    assert found(Deal, "bright") == {deal.pk}  # through its account's name

    contact.last_name = "Plimsoll"
    contact.save()
    Lead.objects.filter(pk=lead.pk).update(company="Orrery Works")  # a bulk update too
    account.name = "Darkwater AG"
    account.save()
    assert found(Contact, "quaxley") == set()
    assert found(Contact, "plimsoll") == {contact.pk}
    assert found(Lead, "vexworth") == set()
    assert found(Lead, "orrery") == {lead.pk}
    assert found(Deal, "bright") == set()
    assert found(Deal, "darkwater") == {deal.pk}
    assert_index_matches_tables()

    contact.delete()
    Lead.objects.filter(pk=lead.pk).delete()
    deal.delete()
    assert found(Contact, "plimsoll") == set()
    assert found(Lead, "orrery") == set()
    assert found(Deal, "glimmer") == set()
    assert_index_matches_tables()


def test_people_are_found_by_addresses_as_they_are_added_changed_and_removed(org):
    contact = f.contact(org.rep, "first@alpha-mail.example", last_name="Addressed")
    lead = f.lead(org.rep, "lead@beta-mail.example")
    assert found(Contact, "alpha-mail") == {contact.pk}
    assert found(Lead, "beta-mail") == {lead.pk}

    second = contact.emails.create(address="second@gamma-mail.example")
    assert found(Contact, "gamma-mail") == {contact.pk}
    second.address = "second@delta-mail.example"
    second.save()
    assert found(Contact, "gamma-mail") == set()
    assert found(Contact, "delta-mail") == {contact.pk}
    EmailAddress.objects.filter(lead=lead).delete()
    assert found(Lead, "beta-mail") == set()
    second.delete()
    assert found(Contact, "delta-mail") == set()
    assert found(Contact, "alpha-mail") == {contact.pk}
    assert_index_matches_tables()


def test_short_words_are_not_narrowed_and_long_ones_of_many_records_are_common(org, monkeypatch):
    """A word of one or two characters has no trigram: the search runs without candidates
    (``web.modules`` tests every row); a word held by more records than the limits too."""
    made = {f.contact(org.rep, last_name=f"Commonname{i}").pk for i in range(3)}
    assert record_index.candidates(Contact, ["co"]) is None
    assert set(record_index.candidates(Contact, ["commonname", "co"]) or ()) == made
    monkeypatch.setattr(record_index, "CANDIDATES_FEW", 2)  # asked again, for more
    assert set(record_index.candidates(Contact, ["commonname"]) or ()) == made
    monkeypatch.setattr(record_index, "CANDIDATES_MAX", 2)
    assert record_index.candidates(Contact, ["commonname"]) is None
    assert record_index.candidates(Contact, ["commonname1"]) is not None


def test_the_index_is_kept_by_the_database_whatever_writes(org):
    """Rows written by bulk create (the importer) and by raw SQL are indexed too."""
    Account.objects.bulk_create(
        [Account(owner=org.rep, name=f"Bulkmade {i}") for i in range(3)], batch_size=2
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE crm_account SET name = 'Rawrenamed' WHERE name = 'Bulkmade 1'")
    assert len(found(Account, "bulkmade")) == 2
    assert len(found(Account, "rawrenamed")) == 1
    assert_index_matches_tables()
