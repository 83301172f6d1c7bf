"""Text that cannot be stored (a lone surrogate, NUL) answers 422 naming the field, never 500.

JSON may escape any UTF-16 code unit, so ``"\\ud800"`` arrives as a lone surrogate, which is
not Unicode text: no database can store it and no answer can be encoded with it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from crmail.api.schemas import (
    AccountIn,
    AccountPatch,
    ContactIn,
    ContactPatch,
    DealIn,
    DealPatch,
    LeadIn,
    LeadPatch,
    UserIn,
    UserPatch,
)
from crmail.api.tests.conftest import ApiClient
from crmail.crm.models import Account, Contact, Deal, Lead, Stage
from crmail.people.models import User
from tests import factories as f

pytestmark = pytest.mark.django_db

SURROGATE = "\ud800"
NUL = "Bad\x00Name"


def text_fields(schema: type) -> list[str]:
    """The free-text fields of an input schema (str, or a list of str)."""
    names = []
    for name, info in schema.model_fields.items():
        kind = repr(info.annotation)
        if "str" in kind and "Literal" not in kind and "Status" not in kind:
            names.append(name)
    return names


def valid_body(module: str) -> dict[str, Any]:
    if module == "deals":
        stage = Stage.objects.get(pipeline__is_default=True, name="Qualification")
        return {"name": "Deal", "stage_id": stage.pk}
    if module == "accounts":
        return {"name": "Acme"}
    if module == "users":
        return {"email": "new@crmail.test", "name": "New User"}
    return {"last_name": "Lovelace"}


def with_value(body: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    return {**body, field: [value] if field == "secondary_emails" else value}


CASES = [
    ("contacts", ContactIn, ContactPatch, Contact),
    ("leads", LeadIn, LeadPatch, Lead),
    ("accounts", AccountIn, AccountPatch, Account),
    ("deals", DealIn, DealPatch, Deal),
    ("users", UserIn, UserPatch, User),
]


def existing(org, module: str) -> Any:
    if module == "users":
        return org.rep
    return {"contacts": f.contact, "leads": f.lead, "accounts": f.account, "deals": f.deal}[module](
        org.admin
    )


def post(api: ApiClient, path: str, body: dict[str, Any]) -> Any:
    # json.dumps writes a lone surrogate as the escape "\ud800", as any JSON client would.
    return api.post(path, raw=json.dumps(body).encode())


@pytest.mark.parametrize(("module", "schema_in", "schema_patch", "model"), CASES)
@pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
def test_unstorable_text_in_any_field_answers_422_naming_it(
    org, module, schema_in, schema_patch, model, bad
):
    api = ApiClient(org.admin)
    before = model.objects.count()
    fields_in = text_fields(schema_in)
    assert fields_in
    for field in fields_in:
        response = post(api, f"/{module}", with_value(valid_body(module), field, bad))
        assert response.status_code == 422, (field, response.content)
        assert response.json()["detail"] == [
            {"field": field, "message": response.json()["detail"][0]["message"]}
        ], field
        assert model.objects.count() == before

    record = existing(org, module)
    for field in text_fields(schema_patch):
        body = with_value({}, field, bad)
        response = api.patch(f"/{module}/{record.pk}", raw=json.dumps(body).encode())
        assert response.status_code == 422, (field, response.content)
        assert [e["field"] for e in response.json()["detail"]] == [field]


def test_the_message_says_what_is_wrong(org):
    response = post(ApiClient(org.rep), "/contacts", {"last_name": "Ada" + SURROGATE})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "last_name"
    assert "not valid text" in error["message"]


def all_inputs() -> list[type]:
    import crmail.api.messages
    import crmail.api.sharing  # noqa: F401
    from crmail.api.schemas import Input

    found, todo = [], [Input]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def test_every_request_body_refuses_a_surrogate_in_each_text_field():
    from pydantic import ValidationError

    checked = 0
    for schema in all_inputs():
        for name, info in schema.model_fields.items():
            if "str" not in repr(info.annotation) or "Literal" in repr(info.annotation):
                continue
            key = info.alias or name
            value = [SURROGATE] if "list" in repr(info.annotation) else SURROGATE
            with pytest.raises(ValidationError) as refused:
                schema.model_validate({key: value})
            # Our message, or pydantic's own for constrained strings ("unable to parse raw
            # data as a unicode string"): either way a 422 naming the field.
            assert [e for e in refused.value.errors() if e["loc"][:1] == (key,)], (schema, name)
            checked += 1
    assert checked > 40
