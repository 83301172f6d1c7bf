"""Contacts, leads, accounts and deals through /api/v1: create, read, change, list, delete."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crmail.api.tests.conftest import ApiClient
from crmail.crm.models import Account, Contact, Deal, EmailAddress, Lead, Stage
from tests import factories as f

pytestmark = pytest.mark.django_db


def stage(name: str = "Qualification") -> Stage:
    return Stage.objects.get(pipeline__is_default=True, name=name)


def round_trip_cases() -> list[tuple[str, type, dict[str, Any], dict[str, Any]]]:
    """(resource, model, what to create, what to change)."""
    return [
        (
            "contacts",
            Contact,
            {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": "Ada@Example.COM",
                "secondary_emails": ["ada@home.example"],
                "title": "Analyst",
            },
            {"title": "Countess", "secondary_emails": ["ada@work.example", "ADA@home.example"]},
        ),
        (
            "leads",
            Lead,
            {"last_name": "Hopper", "email": "grace@navy.example", "company": "Navy"},
            {"status": "qualified", "company": "Yale"},
        ),
        (
            "accounts",
            Account,
            {"name": "Acme", "website": "https://www.Acme.example/about"},
            {"industry": "Rockets", "phone": "+1 555 0100"},
        ),
        (
            "deals",
            Deal,
            {"name": "Big one", "stage_id": None, "amount": "1200.50"},
            {"amount": 99, "closing_date": "2030-01-31"},
        ),
    ]


@pytest.mark.parametrize(("resource", "model", "new", "change"), round_trip_cases())
def test_a_record_can_be_created_read_changed_and_deleted(org, resource, model, new, change):
    api = ApiClient(org.rep)
    if resource == "deals":
        new = {**new, "stage_id": stage().pk}

    created = api.post(f"/{resource}", new)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["owner"] == {"id": org.rep.pk, "name": "Rex Rep", "email": "rep@crmail.test"}
    record_id = body["id"]
    assert model.objects.filter(pk=record_id, owner=org.rep, created_by=org.rep).exists()

    read = api.get(f"/{resource}/{record_id}")
    assert read.status_code == 200
    assert read.json() == body

    changed = api.patch(f"/{resource}/{record_id}", change)
    assert changed.status_code == 200, changed.content
    after = changed.json()
    # Fields not given keep their values.
    untouched = {k for k in body if k not in change and k not in ("modified_at",)}
    assert {k: after[k] for k in untouched} == {k: body[k] for k in untouched}
    assert api.get(f"/{resource}/{record_id}").json() == after

    deleted = api.delete(f"/{resource}/{record_id}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert not model.objects.filter(pk=record_id).exists()
    assert api.get(f"/{resource}/{record_id}").status_code == 404


def test_contact_addresses_are_lower_cased_and_a_patch_replaces_the_secondary_ones(org):
    api = ApiClient(org.rep)
    body = api.post(
        "/contacts",
        {
            "last_name": "Lovelace",
            "email": " Ada@Example.COM ",
            "secondary_emails": ["A@B.example"],
        },
    ).json()
    assert body["email"] == "ada@example.com"
    assert body["secondary_emails"] == ["a@b.example"]
    assert body["name"] == "Lovelace"

    after = api.patch(
        f"/contacts/{body['id']}", {"secondary_emails": ["c@d.example", "ADA@example.com"]}
    ).json()
    assert after["email"] == "ada@example.com"
    assert after["secondary_emails"] == ["c@d.example"]
    assert set(EmailAddress.objects.values_list("address", flat=True)) == {
        "ada@example.com",
        "c@d.example",
    }


def test_patch_with_null_clears_a_field_and_omitting_it_keeps_it(org):
    account = f.account(org.rep, "Acme")
    contact = f.contact(org.rep, "x@y.example", title="Boss", account=account)
    api = ApiClient(org.rep)
    assert api.patch(f"/contacts/{contact.pk}", {"first_name": "Lin"}).json()["account_id"] == (
        account.pk
    )
    after = api.patch(f"/contacts/{contact.pk}", {"account_id": None, "title": None}).json()
    assert after["account_id"] is None
    assert after["title"] == ""
    assert after["first_name"] == "Lin"


def test_a_deal_shows_its_stage_and_defaults_to_the_default_pipeline(org):
    api = ApiClient(org.rep)
    contact = f.contact(org.rep)
    account = f.account(org.rep)
    body = api.post(
        "/deals",
        {
            "name": "Renewal",
            "stage_id": stage("Negotiation/Review").pk,
            "contact_id": contact.pk,
            "account_id": account.pk,
            "amount": 1000,
        },
    ).json()
    assert body["pipeline_id"] == stage().pipeline_id
    assert body["stage"] == {
        "id": stage("Negotiation/Review").pk,
        "name": "Negotiation/Review",
        "position": 4,
        "probability": 90,
        "kind": "open",
    }
    assert body["amount"] == "1000.00"
    assert (body["contact_id"], body["account_id"]) == (contact.pk, account.pk)


def test_the_owner_can_be_given_and_is_returned_with_name_and_address(org):
    body = ApiClient(org.manager).post("/accounts", {"name": "Acme", "owner_id": org.rep.pk})
    assert body.status_code == 201
    assert body.json()["owner"] == {"id": org.rep.pk, "name": "Rex Rep", "email": org.rep.email}


# ----------------------------------------------------------------------------- lists


def test_email_filter_finds_a_contact_by_a_secondary_address_in_another_case(org):
    wanted = f.contact(org.rep, "main@acme.example", secondary=("Other@Acme.example",))
    f.contact(org.rep, "someone@else.example")
    api = ApiClient(org.rep)
    found = api.get("/contacts", {"email": "OTHER@acme.EXAMPLE"}).json()
    assert [c["id"] for c in found["items"]] == [wanted.pk]
    assert found["count"] == 1
    assert found["items"][0]["secondary_emails"] == ["other@acme.example"]
    assert api.get("/contacts", {"email": "Main@Acme.example"}).json()["count"] == 1
    assert api.get("/contacts", {"email": "nobody@acme.example"}).json()["count"] == 0


def test_email_filter_on_leads_matches_each_lead_once(org):
    lead = f.lead(org.rep, "pat@lead.example")
    lead.emails.create(address="pat2@lead.example")
    f.lead(org.rep, "other@lead.example")
    found = ApiClient(org.rep).get("/leads", {"email": "PAT@lead.example"}).json()
    assert [x["id"] for x in found["items"]] == [lead.pk]


def test_email_filter_does_not_find_contacts_the_user_may_not_see(org):
    f.contact(org.peer, "secret@acme.example")
    found = ApiClient(org.rep).get("/contacts", {"email": "secret@acme.example"}).json()
    assert found == {"items": [], "count": 0, "limit": 50, "offset": 0}


def test_pagination_pages_through_every_record_once(org):
    made = {f.contact(org.rep, last_name=f"Name{i:02}").pk for i in range(7)}
    api = ApiClient(org.rep)
    seen: list[int] = []
    for offset in range(0, 9, 3):
        page = api.get("/contacts", {"limit": 3, "offset": offset}).json()
        assert page["count"] == 7
        assert (page["limit"], page["offset"]) == (3, offset)
        seen += [c["id"] for c in page["items"]]
    assert len(seen) == 7 and set(seen) == made
    assert [c["last_name"] for c in api.get("/contacts").json()["items"]] == [
        f"Name{i:02}" for i in range(7)
    ]


def test_limit_defaults_to_50_and_is_at_most_200(org):
    for i in range(205):
        Account.objects.create(owner=org.rep, name=f"A{i:03}")
    api = ApiClient(org.rep)
    first = api.get("/accounts").json()
    assert (len(first["items"]), first["limit"], first["count"]) == (50, 50, 205)
    big = api.get("/accounts", {"limit": 1000}).json()
    assert (len(big["items"]), big["limit"]) == (200, 200)
    assert api.get("/accounts", {"limit": 0}).status_code == 422
    assert api.get("/accounts", {"offset": -1}).status_code == 422


def test_ordering_is_taken_from_a_fixed_list(org):
    older = f.account(org.rep, "Zeta")
    newer = f.account(org.rep, "Alpha")
    Account.objects.filter(pk=older.pk).update(modified_at=timezone.now() - timedelta(days=1))
    api = ApiClient(org.rep)

    def names(ordering: str) -> list[str]:
        return [a["name"] for a in api.get("/accounts", {"ordering": ordering}).json()["items"]]

    assert names("name") == ["Alpha", "Zeta"]
    assert names("-name") == ["Zeta", "Alpha"]
    assert names("-modified_at") == ["Alpha", "Zeta"]
    assert names("modified_at") == ["Zeta", "Alpha"]
    refused = api.get("/accounts", {"ordering": "owner__password"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "ordering"
    assert newer  # both exist


def test_search_owner_and_modified_since_filters(org):
    ada = f.contact(org.rep, first_name="Ada", last_name="Lovelace")
    f.contact(org.rep, first_name="Grace", last_name="Hopper")
    managers = f.contact(org.manager, first_name="Ada", last_name="Byron")
    api = ApiClient(org.manager)

    def ids(**params: Any) -> set[int]:
        return {c["id"] for c in api.get("/contacts", params).json()["items"]}

    assert ids(q="ada love") == {ada.pk}
    assert ids(q="ADA") == {ada.pk, managers.pk}
    assert ids(q="ada", owner=org.manager.pk) == {managers.pk}
    Contact.objects.filter(pk=ada.pk).update(modified_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ada.pk not in ids(modified_since=since)
    assert managers.pk in ids(modified_since=since)
    assert api.get("/contacts", {"owner": "me"}).status_code == 422


def test_account_domain_and_deal_filters(org):
    acme = f.account(org.rep, "Acme", domain="acme.example")
    f.account(org.rep, "Other", domain="other.example")
    api = ApiClient(org.rep)
    found = api.get("/accounts", {"domain": "https://www.ACME.example/x"}).json()
    assert [a["id"] for a in found["items"]] == [acme.pk]

    contact = f.contact(org.rep)
    won = f.deal(org.rep, "Won", stage_name="Closed Won", contact=contact)
    f.deal(org.rep, "Open", account=acme)

    def names(**params: Any) -> set[str]:
        return {d["name"] for d in api.get("/deals", params).json()["items"]}

    assert names(stage=stage("Closed Won").pk) == {"Won"}
    assert names(contact=contact.pk) == {"Won"}
    assert names(account=acme.pk) == {"Open"}
    assert names() == {"Won", "Open"}
    assert won


@pytest.mark.parametrize("resource", ["contacts", "leads", "accounts", "deals", "users"])
def test_a_list_costs_the_same_number_of_queries_for_few_and_many_records(org, resource):
    def make(n: int) -> None:
        for _ in range(n):
            owner = org.rep if _ % 2 else org.manager
            if resource == "contacts":
                f.contact(owner, f"c{next(f._seq)}@x.example", secondary=("s@x.example",))
            elif resource == "leads":
                f.lead(owner, f"l{next(f._seq)}@x.example")
            elif resource == "accounts":
                f.account(owner)
            elif resource == "deals":
                f.deal(owner)
            else:
                f.user()

    api = ApiClient(org.manager)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get(f"/{resource}").status_code == 200
        return len(queries)

    make(2)
    count()  # the first request of a token also notes when it was used
    few = count()
    make(10)
    assert count() == few


@pytest.mark.parametrize("resource", ["contacts", "leads", "accounts", "deals"])
def test_every_documented_ordering_works(org, resource, client):
    makers = {"contacts": f.contact, "leads": f.lead, "accounts": f.account, "deals": f.deal}
    makers[resource](org.rep)
    doc = client.get("/api/v1/openapi.json").json()
    params = doc["paths"][f"/api/v1/{resource}"]["get"]["parameters"]
    ordering = next(p for p in params if p["name"] == "ordering")["schema"]
    keys = ordering.get("enum") or ordering["allOf"][0]["enum"]
    assert len(keys) >= 6
    api = ApiClient(org.rep)
    for key in keys:
        response = api.get(f"/{resource}", {"ordering": key})
        assert response.status_code == 200, key
        assert response.json()["count"] == 1


def test_modified_since_with_any_utc_offset_is_a_moment(org):
    # +16:00 is a valid ISO 8601 offset, which PostgreSQL does not take as it is.
    f.contact(org.rep, "ada@example.com")
    api = ApiClient(org.rep)
    late = api.get("/contacts", {"modified_since": "2999-01-01T00:00:00+16:00"})
    early = api.get("/contacts", {"modified_since": "2000-01-01T00:00:00+16:00"})
    assert (late.status_code, early.status_code) == (200, 200)
    assert (late.json()["count"], early.json()["count"]) == (0, 1)
