"""Email addresses as crmail stores and compares them."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# Lower-case ASCII addresses of the plainest form: a dot-atom, host names of letters,
# digits and inner hyphens, a top-level domain of letters. Every one of them is an address
# Django's ``validate_email`` takes (at most its 320 characters); anything else is asked
# of it.
_PLAIN = re.compile(
    r"[-!#$%&'*+/=?^_`{}|~0-9a-z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9a-z]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
MAX_LENGTH = 320


def normalize_address(raw: str) -> str:
    """The stored form of an address: trimmed and lower-cased, compared case-insensitively.

    Raises ValidationError with a message naming the address when it is not one.
    """
    address = (raw or "").strip().strip("<>").strip().lower()
    if not address:
        raise ValidationError("An email address is empty.")
    if any(c in address for c in "\r\n\x00"):
        raise ValidationError("An email address may not contain line breaks.")
    if len(address) <= MAX_LENGTH and _PLAIN.fullmatch(address):
        return address  # nearly every address: one Django's validator takes too
    # Imported here, for the few addresses that come this far: the module brings Django's
    # translation machinery with it (about 0.025 s), which a first sync's parsing workers,
    # importing this module before their first batch, would otherwise wait for.
    from django.core.validators import validate_email

    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError(f"{raw.strip()!r} is not a valid email address.") from None
    return address


def split_addresses(raw: str | list[str] | None) -> list[str]:
    """Split a comma-, semicolon- or newline-separated list (or a list) into addresses."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else raw.replace(";", ",").replace("\n", ",").split(",")
    return [item.strip() for item in items if item and item.strip()]


def normalize_domain(raw: str) -> str:
    """A web domain from a domain or a website URL: ``https://www.Acme.com/x`` → ``acme.com``."""
    value = (raw or "").strip().lower()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0].rstrip(".")
    if value.startswith("www."):
        value = value[4:]
    return value
