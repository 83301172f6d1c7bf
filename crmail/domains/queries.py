"""Read side of email authentication: the domains, the records each must publish, and
whether mail from an address will carry crmail's signature (the composer's warning)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from crmail.domains import keys
from crmail.domains.keys import spf_value
from crmail.domains.models import Domain, State
from crmail.domains.names import domain_of


def domains() -> QuerySet[Domain]:
    """Every domain added, by name (administrators only: the caller's check)."""
    return Domain.objects.select_related("added_by").order_by("name")


def find(name: str) -> Domain | None:
    return Domain.objects.filter(name=name).first()


@dataclass(frozen=True)
class Record:
    """A DNS record the domain publishes for crmail: where, what, and a word on it."""

    purpose: str  # "SPF" or "DKIM"
    type: str  # "TXT"
    name: str  # the full name: example.com, crmail202611-k3x9._domainkey.example.com
    value: str  # "" when crmail asks for no particular value (SPF without an include)
    note: str


def records(domain: Domain) -> list[Record]:
    """The SPF and DKIM records ``domain`` must publish."""
    include = settings.CRMAIL_SPF_INCLUDE
    if include:
        spf_note = (
            f"A domain that already has an SPF record adds include:{include} to it, before "
            "its “all”, instead: a domain has one SPF record only."
        )
    else:
        spf_note = (
            "crmail asks for no particular include (CRMAIL_SPF_INCLUDE is not set): keep or "
            "publish one SPF record naming the servers your mail leaves through."
        )
    dkim_value = keys.record_value(domain.public_key)
    return [
        Record("SPF", "TXT", domain.name, spf_value(), spf_note),
        Record(
            "DKIM",
            "TXT",
            domain.dkim_name,
            dkim_value,
            "DNS providers that ask for the name alone take "
            f"{domain.dkim_name.removesuffix('.' + domain.name)}. The value is longer than "
            "255 characters: most providers split it into quoted strings themselves (a zone "
            "file writes it so), and resolvers join them back.",
        ),
    ]


def is_authenticated(name: str) -> bool:
    return bool(name) and Domain.objects.filter(name=name, state=State.AUTHENTICATED).exists()


def unsigned_reason(address: str) -> str:
    """Why mail from ``address`` will go out without crmail's DKIM signature, in words; ""
    when it will be signed, or when no domain has been added at all (an organisation that
    does not use email authentication is not warned on every mail)."""
    name = domain_of(address)
    if not name:
        return ""
    states = dict(Domain.objects.values_list("name", "state"))
    if not states or states.get(name) == State.AUTHENTICATED:
        return ""
    if name in states:
        return (
            f"{name} is not authenticated yet ({State(states[name]).label.lower()}): mail from "
            f"{address} goes out without crmail's DKIM signature."
        )
    return (
        f"{name} is not an authenticated domain: mail from {address} goes out without "
        "crmail's DKIM signature, and receivers may take it for spam."
    )
