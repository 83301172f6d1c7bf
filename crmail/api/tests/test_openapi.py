"""The OpenAPI document at /api/v1/openapi.json is valid OpenAPI, with no duplicate keys."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, f"duplicate keys {duplicates} in {keys}"
    return dict(pairs)


def test_the_document_is_valid_openapi_without_duplicate_keys():
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.content, object_pairs_hook=no_duplicates)
    validate(document)
    backup = document["paths"]["/api/v1/users/{id}/mail-backup"]["get"]["responses"]
    assert "application/mbox" in backup["200"]["content"]


def test_every_operation_documents_its_refusals():
    document = Client().get("/api/v1/openapi.json").json()
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            needed = {"401"}
            if operation.get("parameters") or operation.get("requestBody"):
                needed.add("422")  # any parameter or body can be invalid
            if operation.get("requestBody"):
                needed.add("400")  # a body that is not JSON
            if needed - codes:
                missing.append(f"{method.upper()} {path}: {sorted(needed - codes)}")
    assert not missing
