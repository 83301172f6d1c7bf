"""Counts in words, as the pages write them with ``|pluralize``: "1 folder", "2 folders";
sizes in words: "12.3 MB"."""

from __future__ import annotations


def count(n: int, singular: str, plural: str | None = None) -> str:
    """ "1 folder", "0 folders", "2 mailboxes" (``plural`` when it is not ``singular`` + s)."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def size(n: int) -> str:
    """``n`` bytes in words a person reads at a glance, in decimal units as storage is
    counted (1 GB is 10^9 bytes): "980 bytes", "12.3 MB", "95.0 GB"."""
    if n < 1000:
        return f"{n:,} bytes"
    value = n / 1000
    for unit in ("kB", "MB", "GB"):
        if value < 1000:
            return f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} TB"
