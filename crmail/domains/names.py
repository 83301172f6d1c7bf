"""Domain names as crmail keeps them: lower case, IDNA (``xn--``) form, no final dot."""

from __future__ import annotations

import re

MAX_NAME = 253
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_SERVICE_LABEL = re.compile(r"_?[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?")


class BadName(ValueError):
    """Not a domain name; the message says why in words."""


def domain_name(text: str, *, service: bool = False) -> str:
    """``text`` as a domain name (``Example.COM.`` → ``example.com``, ``bücher.de`` →
    ``xn--bcher-kva.de``), or ``BadName``. ``service`` allows the underscores of service
    names (``_spf.example.com``), which a mail domain never has."""
    name = text.strip().rstrip(".").lower()
    if not name:
        raise BadName("Enter a domain name, such as example.com.")
    if any(c.isspace() or c in "@/:" for c in name):
        raise BadName(
            f"{text.strip()!r} is not a domain name: write it alone, such as example.com."
        )
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadName(f"{text.strip()!r} is not a domain name crmail can read.") from None
    labels = name.split(".")
    pattern = _SERVICE_LABEL if service else _LABEL
    if (
        len(labels) < 2
        or len(name) > MAX_NAME
        or not all(pattern.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise BadName(
            f"{text.strip()!r} is not a domain name: it takes two or more parts of letters, "
            "digits and hyphens separated by dots, such as example.com."
        )
    return name


def domain_of(address: str) -> str:
    """The domain of an address as ``domain_name`` writes it ("" when it has none)."""
    _, at, domain = address.strip().rpartition("@")
    if not at:
        return ""
    try:
        return domain_name(domain)
    except BadName:
        return ""
