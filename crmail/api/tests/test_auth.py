"""Signing in to the API: bearer tokens, and the session with its CSRF check."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from crmail.api.tests.conftest import BASE, ApiClient
from crmail.people.models import ApiToken
from tests import factories as f

pytestmark = pytest.mark.django_db


def assert_refused(response, words: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert words in response.json()["detail"]


def test_a_valid_token_answers_and_notes_when_it_was_used(org):
    row, secret = ApiToken.issue(org.rep)
    assert ApiClient(token=secret).get("/contacts").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_without_a_token_the_answer_is_401_saying_how_to_sign_in(org):
    f.contact(org.rep)
    response = ApiClient().get("/contacts")
    assert_refused(response, "Authorization: Bearer")
    assert "items" not in response.json()
    assert_refused(ApiClient().post("/contacts", {"last_name": "X"}), "Authorization: Bearer")


@pytest.mark.parametrize("token", ["nonsense", "crm_" + "x" * 43, "Bearer", " "])
def test_an_unknown_token_is_refused(org, token):
    assert_refused(ApiClient(token=token).get("/contacts"), "not valid")


def test_another_scheme_is_refused_without_echoing_the_header(org):
    response = Client().get(f"{BASE}/contacts", HTTP_AUTHORIZATION="Basic c2VjcmV0OnZhbHVl")
    assert_refused(response, "Bearer <token>")
    assert "c2VjcmV0" not in response.content.decode()


def test_a_revoked_token_is_refused(org):
    row, secret = ApiToken.issue(org.rep)
    ApiToken.objects.filter(pk=row.pk).update(revoked_at=timezone.now())
    assert_refused(ApiClient(token=secret).get("/contacts"), "revoked")


def test_a_deactivated_users_token_is_refused(org):
    secret = f.token(org.rep)
    org.rep.is_active = False
    org.rep.save()
    assert_refused(ApiClient(token=secret).get("/contacts"), "deactivated")
    assert_refused(ApiClient(token=secret).delete("/contacts/1"), "deactivated")


def test_the_session_works_for_reading_and_needs_the_csrf_token_to_write(org):
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.rep)
    assert client.get(f"{BASE}/contacts").status_code == 200

    refused = client.post(f"{BASE}/accounts", {"name": "X"}, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]

    secret = "a" * 32
    client.cookies["csrftoken"] = secret
    created = client.post(
        f"{BASE}/accounts",
        {"name": "Acme"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=secret,
    )
    assert created.status_code == 201
    assert created.json()["owner"]["id"] == org.rep.pk


def test_a_bad_token_is_refused_even_alongside_a_signed_in_session(org):
    client = Client()
    client.force_login(org.admin)
    response = client.get(f"{BASE}/contacts", HTTP_AUTHORIZATION="Bearer crm_wrong")
    assert_refused(response, "not valid")


def test_the_openapi_document_lists_every_resource_and_the_bearer_scheme(db):
    response = Client().get(f"{BASE}/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    paths = doc["paths"]
    for resource in ("contacts", "leads", "accounts", "deals"):
        assert set(paths[f"{BASE}/{resource}"]) == {"get", "post"}
        assert set(paths[f"{BASE}/{resource}/{{id}}"]) == {"get", "patch", "delete"}
        assert "422" in paths[f"{BASE}/{resource}"]["post"]["responses"]
        assert "201" in paths[f"{BASE}/{resource}"]["post"]["responses"]
    assert set(paths[f"{BASE}/users"]) == {"get", "post"}
    assert f"{BASE}/users/{{id}}/deactivate" in paths
    assert set(paths[f"{BASE}/pipelines"]) == {"get"}
    schemes = doc["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    params = {p["name"] for p in paths[f"{BASE}/contacts"]["get"]["parameters"]}
    assert {"limit", "offset", "email", "q", "owner", "modified_since", "ordering"} <= params


def test_every_reference_in_the_openapi_document_resolves(db):
    doc = Client().get(f"{BASE}/openapi.json").json()
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref


def test_the_openapi_document_is_valid_openapi(db):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(Client().get(f"{BASE}/openapi.json").json())


def test_the_interactive_docs_page_loads(db):
    response = Client().get(f"{BASE}/docs")
    assert response.status_code == 200
    assert b"openapi.json" in response.content
