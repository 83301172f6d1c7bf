"""Merge fields: ``{{Contact.first_name}}`` in a template, filled from a record and its sender.

A small parser, not a template engine: ``{{`` + ``Model.field`` + ``}}`` (spaces allowed
inside the braces) is replaced by a value from ``FIELDS``, a fixed list of what may be
merged; nothing else in the text means anything. Anything else between double braces is an
unknown field, named in the error (``{{Contact.owner.password}}`` is never a path to walk).
Values are plain text and are put in as they are (a body is plain text: nothing to escape).

Records come from the one the mail is written from, and only as far as the sender may view
them (``people.access``): a Deal brings its contact and its account (or its contact's), a
Contact its account. A field whose record is missing or hidden is an error naming it, so
nothing is sent with a hole where a name should be.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crmail.config.dates import day
from crmail.crm.models import RECORD_MODELS, Account, Contact, Deal, Lead, Record
from crmail.people import access
from crmail.people.models import User

# {{ anything without braces }}: every such place is a merge field, known or not.
PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
NAME_MAX_SHOWN = 60


def _amount(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _person_fields(label: str) -> dict[str, tuple[str, Callable[[Any], str]]]:
    return {
        "first_name": (f"The {label}'s first name", lambda r: r.first_name),
        "last_name": (f"The {label}'s last name", lambda r: r.last_name),
        "full_name": (f"The {label}'s first and last name", lambda r: r.full_name),
        "email": (f"The {label}'s primary email address", lambda r: r.primary_email),
        "title": (f"The {label}'s job title", lambda r: r.title),
        "phone": (f"The {label}'s phone number", lambda r: r.phone),
    }


# Model → field → (what it is, how to read it). The whole list of what may be merged.
FIELDS: dict[str, dict[str, tuple[str, Callable[[Any], str]]]] = {
    "Contact": _person_fields("contact"),
    "Lead": {
        **_person_fields("lead"),
        "company": ("The lead's company", lambda r: r.company),
    },
    "Account": {
        "name": ("The account's name", lambda r: r.name),
        "website": ("The account's website", lambda r: r.website),
        "phone": ("The account's phone number", lambda r: r.phone),
    },
    "Deal": {
        "name": ("The deal's name", lambda r: r.name),
        "amount": ("The deal's amount, as 12,500.00", lambda r: _amount(r.amount)),
        "closing_date": ("The deal's closing date, as 3 Dec 2026", lambda r: day(r.closing_date)),
    },
    "User": {
        "name": ("Your name (the sender)", lambda u: u.name),
        "email": ("Your sign-in email address", lambda u: u.email),
        "signature": ("Your email signature (set on your Account page)", lambda u: u.signature),
    },
}

# What each model's fields are called in words, for errors.
RECORD_WORDS = {"Contact": "a contact", "Lead": "a lead", "Account": "an account", "Deal": "a deal"}


def field_list() -> list[tuple[str, str]]:
    """Every merge field as it is written, with what it is (for the pages and the API docs)."""
    return [
        (f"{{{{{model}.{name}}}}}", words)
        for model, fields in FIELDS.items()
        for name, (words, _read) in fields.items()
    ]


def shown(name: str) -> str:
    """A field as the user wrote it, cut short if long, for an error message."""
    name = name.strip()
    if len(name) > NAME_MAX_SHOWN:
        name = name[:NAME_MAX_SHOWN] + "…"
    return "{{" + name + "}}"


def fields_in(text: str) -> list[str]:
    """The merge fields in ``text``, as written between the braces (spaces stripped)."""
    return [m.group(1).strip() for m in PLACEHOLDER.finditer(text)]


def _known(name: str) -> bool:
    model, dot, field = name.partition(".")
    return bool(dot) and field in FIELDS.get(model, {})


def unknown_fields(text: str) -> list[str]:
    """The fields in ``text`` that are not merge fields, each once, in order."""
    seen: list[str] = []
    for name in fields_in(text):
        if not _known(name) and name not in seen:
            seen.append(name)
    return seen


def unknown_message(names: list[str]) -> str:
    listed = ", ".join(shown(n) for n in names)
    word = "an unknown merge field" if len(names) == 1 else "unknown merge fields"
    return (
        f"This has {word}: {listed}. Merge fields are written like {{{{Contact.first_name}}}}; "
        "the list of them is beside the template editor and in the API documentation."
    )


class MergeError(Exception):
    """A template cannot be filled for this record and sender; ``part`` is subject or body."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


@dataclass
class MergeRecords:
    """What the fields are read from: the sender and the records they may view."""

    user: User
    written_from: str = ""  # "contact Grace Hopper", for errors
    contact: Contact | None = None
    lead: Lead | None = None
    account: Account | None = None
    deal: Deal | None = None

    def source(self, model: str) -> Any:
        return {
            "User": self.user,
            "Contact": self.contact,
            "Lead": self.lead,
            "Account": self.account,
            "Deal": self.deal,
        }[model]


def _visible(user: User, model: type[Record], pk: int | None) -> Any:
    if pk is None:
        return None
    qs = access.visible(user, model).filter(pk=pk)
    if model in (Contact, Lead):
        qs = qs.prefetch_related("emails")
    return qs.first()


def records_for(user: User, record: Record | None) -> MergeRecords:
    """The records a mail written by ``user`` from ``record`` merges; ``record`` must be one
    ``user`` may view (the callers found it through ``people.access``)."""
    found = MergeRecords(user=user)
    if record is None:
        return found
    singular = type(record).__name__.lower()
    found.written_from = f"{singular} {record}"
    if isinstance(record, Deal):
        found.deal = record
        found.contact = _visible(user, Contact, record.contact_id)
        account_id = record.account_id or (found.contact.account_id if found.contact else None)
        found.account = _visible(user, Account, account_id)
    elif isinstance(record, Contact):
        found.contact = _visible(user, Contact, record.pk)
        found.account = _visible(user, Account, record.account_id)
    elif isinstance(record, Lead):
        found.lead = _visible(user, Lead, record.pk)
    elif isinstance(record, Account):
        found.account = record
    return found


def render(text: str, records: MergeRecords, part: str) -> str:
    """``text`` with its merge fields filled; MergeError names the first field that cannot be."""
    unknown = unknown_fields(text)
    if unknown:
        raise MergeError(part, unknown_message(unknown))

    def fill(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        model, _, field = name.partition(".")
        source = records.source(model)
        if source is None:
            where = (
                f"this email is written from {records.written_from}"
                if records.written_from
                else "this email is not written from a record"
            )
            raise MergeError(
                part,
                f"{shown(name)} needs {RECORD_WORDS[model]} you may see, and {where} "
                f"without one. Write it from {RECORD_WORDS[model]}, or leave the field out.",
            )
        return FIELDS[model][field][1](source) or ""

    return PLACEHOLDER.sub(fill, text)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def render_template(subject: str, body: str, records: MergeRecords) -> Rendered:
    """Subject and body filled; a subject that would hold a line break is refused (a merged
    value such as a signature can bring one: a header never carries it)."""
    merged_subject = render(subject, records, "subject")
    if "\r" in merged_subject or "\n" in merged_subject:
        raise MergeError(
            "subject",
            "The subject would contain a line break once merged (from a field such as "
            "{{User.signature}}); a subject is one line. Use that field in the body instead.",
        )
    return Rendered(subject=merged_subject, body=render(body, records, "body"))


RECORD_REF = re.compile(r"^(leads|contacts|accounts|deals):([0-9]{1,18})$")


def parse_record_ref(value: str) -> tuple[str, int] | None:
    """``contacts:12`` as (module, id); None when it is not written that way."""
    match = RECORD_REF.match(value.strip())
    if match is None:
        return None
    return match.group(1), int(match.group(2))


def find_record(user: User, module: str, pk: int) -> Record | None:
    """The record ``user`` may view, or None (missing and hidden alike)."""
    model = RECORD_MODELS.get(module)
    if model is None:
        return None
    return access.visible(user, model).filter(pk=pk).first()
