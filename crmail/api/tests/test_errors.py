"""Bad input answers 4xx naming the field, never 500; real bugs answer 500 without details."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.crm.models import Contact, Deal, Pipeline, Stage
from tests import factories as f

pytestmark = pytest.mark.django_db


def qualification() -> Stage:
    return Stage.objects.get(pipeline__is_default=True, name="Qualification")


def deal_body(**extra: Any) -> dict[str, Any]:
    return {"name": "Deal", "stage_id": qualification().pk, **extra}


def assert_invalid(response, *expected: str | None) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.content
    assert fields(response) == set(expected)
    for error in response.json()["detail"]:
        assert error["message"]
        assert "Traceback" not in error["message"]


def test_an_invalid_address_names_the_email_field(org):
    api = ApiClient(org.rep)
    response = api.post("/contacts", {"last_name": "X", "email": "not-an-address"})
    assert_invalid(response, "email")
    assert "not-an-address" in response.json()["detail"][0]["message"]
    assert not Contact.objects.exists()


def test_an_invalid_secondary_address_names_secondary_emails(org):
    response = ApiClient(org.rep).post(
        "/leads", {"last_name": "X", "email": "a@b.example", "secondary_emails": ["nope"]}
    )
    assert_invalid(response, "secondary_emails")


def test_a_line_break_in_an_address_is_refused(org):
    response = ApiClient(org.rep).post(
        "/contacts", {"last_name": "X", "email": "a@b.example\r\nBcc: c@d.example"}
    )
    assert_invalid(response, "email")


def test_a_missing_required_field_is_named(org):
    api = ApiClient(org.rep)
    assert_invalid(api.post("/contacts", {"first_name": "Only"}), "last_name")
    assert_invalid(api.post("/contacts", {"last_name": ""}), "last_name")
    assert_invalid(api.post("/deals", {"name": "No stage"}), "stage_id")


def test_a_stage_of_another_pipeline_is_refused(org):
    other = Pipeline.objects.create(name="Partners")
    foreign = Stage.objects.create(pipeline=other, name="Signed", probability=50)
    api = ApiClient(org.rep)
    response = api.post("/deals", deal_body(stage_id=foreign.pk))
    assert_invalid(response, "stage_id")
    assert "not in pipeline" in response.json()["detail"][0]["message"]
    deal = f.deal(org.rep)
    assert_invalid(api.patch(f"/deals/{deal.pk}", {"stage_id": foreign.pk}), "stage_id")
    moved = api.patch(f"/deals/{deal.pk}", {"pipeline_id": other.pk, "stage_id": foreign.pk})
    assert moved.status_code == 200
    assert moved.json()["stage"]["name"] == "Signed"


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        (-5, "negative"),
        ("-0.01", "negative"),
        ("lots", "decimal"),
        ("NaN", "finite"),
        (True, "decimal"),
        ([1], "decimal"),
        (12.345, "decimal places"),
        ("1e20", "digits"),
    ],
)
def test_a_bad_amount_is_refused_naming_amount(org, amount, why):
    response = ApiClient(org.rep).post("/deals", deal_body(amount=amount))
    assert_invalid(response, "amount")
    assert why in response.json()["detail"][0]["message"].lower()
    assert not Deal.objects.exists()


@pytest.mark.parametrize(
    ("resource", "body", "field"),
    [
        ("contacts", {"last_name": 5}, "last_name"),
        ("contacts", {"last_name": "X", "secondary_emails": "a@b.example"}, "secondary_emails"),
        ("contacts", {"last_name": "X", "secondary_emails": [1]}, "secondary_emails"),
        ("contacts", {"last_name": "X", "account_id": "one"}, "account_id"),
        ("contacts", {"last_name": "X", "account_id": 2**70}, "account_id"),
        ("contacts", {"last_name": "X", "owner": 1}, "owner"),
        ("leads", {"last_name": "X", "status": "hot"}, "status"),
        ("accounts", {"name": {"nested": True}}, "name"),
        ("accounts", {"name": "X", "domain": "not a domain"}, "domain"),
        ("deals", {"name": "D", "stage_id": 1, "closing_date": "soon"}, "closing_date"),
        ("deals", {"name": "D", "stage_id": 1, "owner_id": 987654}, "owner_id"),
    ],
)
def test_wrong_types_and_unknown_fields_are_named(org, resource, body, field):
    assert_invalid(ApiClient(org.rep).post(f"/{resource}", body), field)


def test_a_nul_character_in_a_field_is_refused(org):
    assert_invalid(ApiClient(org.rep).post("/accounts", {"name": "A\x00B"}), "name")


def test_text_longer_than_the_field_is_refused(org):
    assert_invalid(ApiClient(org.rep).post("/accounts", {"name": "x" * 201}), "name")


@pytest.mark.parametrize("raw", [b"{", b"{'a': 1}", b"\xff\xfe\x00", b"last_name=X"])
def test_a_body_that_is_not_json_answers_400(org, raw):
    response = ApiClient(org.rep).post("/contacts", raw=raw)
    assert response.status_code == 400
    assert response.json() == {"detail": "The request body is not valid JSON."}


@pytest.mark.parametrize("body", [[], "text", 5, None])
def test_a_body_that_is_not_an_object_answers_422(org, body):
    response = ApiClient(org.rep).post("/accounts", body)
    assert_invalid(response, None)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/contacts?limit=many", "limit"),
        ("/contacts?offset=-3", "offset"),
        ("/contacts?owner=me", "owner"),
        ("/contacts?modified_since=yesterday", "modified_since"),
        # Past the ends of time once in UTC (no database can hold it).
        ("/contacts?modified_since=0001-01-01T00:00:00%2B16:00", "modified_since"),
        ("/accounts?modified_since=9999-12-31T23:59:59-16:00", "modified_since"),
        ("/contacts?q=%00", "q"),
        ("/contacts?ordering=password", "ordering"),
        ("/leads?status=hot", "status"),
        ("/deals?stage=first", "stage"),
        ("/deals?contact=99999999999999999999999", "contact"),
        ("/contacts/abc", "id"),
        ("/contacts/0", "id"),
        ("/contacts/99999999999999999999999", "id"),
    ],
)
def test_wrong_types_in_the_query_or_path_are_named(org, path, field):
    assert_invalid(ApiClient(org.rep).get(path), field)


def test_line_breaks_in_query_values_are_just_data(org):
    f.contact(org.rep, "a@b.example")
    api = ApiClient(org.rep)
    response = api.get("/contacts", {"email": "a@b.example\r\nX-Evil: 1", "q": "a\r\nb"})
    assert response.status_code == 200
    assert response.json()["count"] == 0
    assert "X-Evil" not in response.headers


def test_an_unknown_id_answers_404(org):
    api = ApiClient(org.rep)
    for path in ("/contacts/987654", "/deals/987654", "/users/987654", "/pipelines/987654"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}
    assert api.patch("/leads/987654", {"last_name": "X"}).status_code == 404
    assert api.delete("/accounts/987654").status_code == 404


def test_a_body_above_the_size_limit_answers_413(org, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = ApiClient(org.rep).post("/accounts", {"name": "x", "description": "y" * 5000})
    assert response.status_code == 413


@pytest.mark.parametrize("debug", [False, True])
def test_a_bug_answers_500_without_details_and_is_logged(org, monkeypatch, settings, caplog, debug):
    settings.DEBUG = debug

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr("crmail.api.records.actions.create_record", broken)
    api = ApiClient(org.rep)
    with caplog.at_level(logging.ERROR, logger="crmail.api"):
        response = api.post("/accounts", {"name": "Acme", "description": "private notes"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal error"}
    assert b"internal detail" not in response.content
    assert b"Traceback" not in response.content
    logged = caplog.text
    assert "RuntimeError" in logged and "/api/v1/accounts" in logged
    assert api.token not in logged
    assert "private notes" not in logged


@pytest.mark.parametrize("path", ["/nothing-here", "/contacts/", "/contacts/1/extra"])
def test_an_unknown_path_answers_json_404(org, path):
    for call in (ApiClient(org.rep).get, ApiClient().get):
        response = call(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}
    assert ApiClient(org.rep).post(path, {"a": 1}).status_code == 404
