"""Addresses in mail headers, normalised the way records store theirs."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from crmail.crm.addresses import normalize_address


def clean_address(raw: str) -> str:
    """The normalised address, or "" when ``raw`` is not a usable address."""
    try:
        return normalize_address(raw)
    except ValidationError:
        return ""
