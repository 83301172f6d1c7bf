"""Addresses as crmail stores them: the quick path for plain addresses takes only what
Django's validator takes, and gives what the validator's path gives."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from hypothesis import given
from hypothesis import strategies as st

from crmail.crm import addresses
from crmail.crm.addresses import normalize_address

pytestmark = pytest.mark.database_independent  # no database: one pass runs it


@given(st.from_regex(addresses._PLAIN, fullmatch=True).filter(lambda a: len(a) <= 320))
def test_every_plain_address_is_one_the_validator_takes(address: str) -> None:
    validate_email(address)  # raises if not


@pytest.mark.parametrize(
    "raw",
    [
        " <Ada.Lovelace@Example.COM> ",
        "bob+crm@mail.example.org",
        "o'brien@example.ie",
        "x@localhost",
        "jürgen@example.de",
        "ada@[127.0.0.1]",
        '"quoted name"@example.com',
        "ada@example.xn--p1ai",
        "ada@-example.com",
        "ada@example",
        "ada.@example.com",
        "ada@example.c",
        "a" * 310 + "@example.com",
    ],
)
def test_an_address_is_stored_as_the_validators_path_stores_it(raw: str, monkeypatch) -> None:
    def outcome() -> str:
        try:
            return normalize_address(raw)
        except ValidationError as exc:
            return f"refused: {exc.messages}"

    quick = outcome()
    monkeypatch.setattr(addresses, "_PLAIN", re.compile(r"(?!)"))  # never quick
    assert quick == outcome()
