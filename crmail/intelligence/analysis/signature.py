"""The details of a message's signature block: name, title, company, website, phones.

The block is what ``reply.split`` cut off the reply; the reading is crmail's one signature
reader, ``crmail.linking.signatures`` (the one that suggests a new contact's details).
"""

from __future__ import annotations

from crmail.intelligence.analysis import Signature
from crmail.linking import signatures

from . import reply


def read(text: str, from_name: str = "") -> Signature | None:
    """The signature of a plain-text body, None when it has none (or one without details)."""
    return from_lines(reply.split(text, from_name)[1], from_name)


def from_lines(lines: list[str], from_name: str = "") -> Signature | None:
    if not lines:
        return None
    name = signatures.clean_display_name(from_name, "")
    found = signatures.read_signature(lines, name)
    result = Signature(
        name=found.name,
        title=found.title,
        company=found.company,
        website=signatures.website_in(lines),
        phones=tuple(signatures.phones_in(lines)),
    )
    only_name = not (result.title or result.company or result.website or result.phones)
    if only_name and not any(result.name and result.name in line for line in lines):
        return None  # the display name alone, beside a block that says nothing of them
    return None if result.is_empty() else result
