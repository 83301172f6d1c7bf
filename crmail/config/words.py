"""Counts in words, as the pages write them with ``|pluralize``: "1 folder", "2 folders"."""

from __future__ import annotations


def count(n: int, singular: str, plural: str | None = None) -> str:
    """ "1 folder", "0 folders", "2 mailboxes" (``plural`` when it is not ``singular`` + s)."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
