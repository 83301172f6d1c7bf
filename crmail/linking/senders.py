"""An unknown sender becomes a Lead or Contact in one step (SPEC F4, F14).

- ``correspondent``: the other person of a message: its From for mail received, the first
  To for mail the user sent (their own addresses are given by the caller, which knows
  their mailboxes).
- ``unknown_sender``: that person when no Lead or Contact the user may see has the
  address (``crm.EmailAddress``, normalised as ``crm.addresses`` does). A record the user
  may not see does not make the sender known: its existence must not show.
- ``prefill``: the form's starting values, from the display name and the signature
  (``signatures``), with the company from the domain as a fall-back.
- ``create_from_sender``: the record written through ``crm.actions`` (with, for a
  Contact, its account: one the user may see with that name, else a new one). The
  record's addresses-changed event links its past mail (``receivers``,
  ``links.link_past_mail``): at once in the same request for up to ``INLINE_LIMIT``
  rows, else as a ``LinkJob`` whose progress the record's page shows.

Whether the user may see the message is the caller's check (``sharing.visibility``, a
layer above this one).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from crmail.crm import actions
from crmail.crm.addresses import normalize_address
from crmail.crm.models import Account, Contact, EmailAddress, Lead, Record
from crmail.linking import signatures
from crmail.linking.models import Module
from crmail.mail.display import html_to_text
from crmail.mail.models import Message, ParseState
from crmail.mail.parse import ParsedMessage, Unparseable, parse_message
from crmail.mail.store import raw_bytes
from crmail.people import access
from crmail.people.models import User

MODULES = (Module.CONTACTS.value, Module.LEADS.value)
LEAD_SOURCE = "Email"


class AlreadyKnown(Exception):
    """The sender is a Lead or Contact the user may see (made meanwhile, perhaps)."""

    def __init__(self, record: Record) -> None:
        super().__init__(f"{record} is already a {type(record)._meta.verbose_name} in crmail.")
        self.record = record


class NoSender(Exception):
    """The message names nobody but the user (or no valid address)."""


@dataclass(frozen=True)
class Sender:
    address: str  # normalised
    name: str  # the display name, as written
    received: bool  # True: the message's From; False: the first To of mail the user sent


def read(message: Message) -> ParsedMessage | None:
    """The message parsed from its raw bytes; None when it cannot be read."""
    if message.parse_state == ParseState.FAILED:
        return None
    try:
        return parse_message(raw_bytes(message))
    except (Unparseable, ValueError, LookupError):
        return None


def _address(raw: str) -> str:
    try:
        return normalize_address(raw)
    except ValidationError:
        return ""


def correspondent(parsed: ParsedMessage, own: Collection[str] = ()) -> Sender | None:
    """The person at the other end: From, or the first To that is not the user's when
    the user sent it (From is one of ``own``)."""
    own = {a.lower() for a in own}
    first = next((p for p in parsed.participants if p.role == "from" and p.valid), None)
    address = _address(first.address) if first is not None else ""
    if not address:
        return None
    if address not in own:
        return Sender(address, first.name, received=True)  # type: ignore[union-attr]
    for p in parsed.participants:
        address = _address(p.address) if p.role == "to" and p.valid else ""
        if address and address not in own:
            return Sender(address, p.name, received=False)
    return None


def known_records(user: User, address: str) -> list[Record]:
    """The Contacts, then the Leads, that ``user`` may see with ``address`` (oldest first)."""
    found: list[Record] = []
    for model, field in ((Contact, "contact"), (Lead, "lead")):
        ids = EmailAddress.objects.filter(address=address, **{f"{field}__isnull": False})
        found += list(
            access.visible(user, model).filter(pk__in=ids.values(f"{field}_id")).order_by("pk")[:5]
        )
    return found


def unknown_sender(parsed: ParsedMessage, user: User, own: Collection[str] = ()) -> Sender | None:
    """The correspondent when no Lead or Contact ``user`` may see has their address."""
    sender = correspondent(parsed, own)
    if sender is None or known_records(user, sender.address):
        return None
    return sender


def _body_text(parsed: ParsedMessage) -> str:
    return parsed.text if parsed.text.strip() else html_to_text(parsed.html)


def prefill(parsed: ParsedMessage, module: str, own: Collection[str] = ()) -> dict[str, str]:
    """The starting values of a ``module`` form (leads or contacts) for the correspondent.

    first_name, last_name and email always; title, phone and mobile when the signature
    has them; the company as ``company`` (leads) or ``account_name`` (contacts: the name
    of the account to choose or make). Mail the user sent holds the user's signature,
    not the correspondent's: only the name, the address and the domain count there.
    """
    if module not in MODULES:
        raise ValueError(f"Only leads and contacts are made from a sender, not {module!r}.")
    sender = correspondent(parsed, own)
    if sender is None:
        raise NoSender("This message names nobody but you.")
    name = signatures.clean_display_name(sender.name, sender.address)
    sig = signatures.Signature()
    if sender.received:
        lines = signatures.signature_lines(_body_text(parsed))
        sig = signatures.read_signature(lines, name)
    if not name and signatures.looks_like_name(sig.name):
        name = sig.name
    first, last = signatures.split_name(name)
    company = sig.company or signatures.company_from_domain(sender.address.rpartition("@")[2])
    values = {
        "first_name": first,
        "last_name": last,
        "email": sender.address,
        "title": sig.title,
        "phone": sig.phone,
        "mobile": sig.mobile,
    }
    if module == Module.LEADS:
        values |= {"company": company, "source": LEAD_SOURCE}
    else:
        values["account_name"] = company
    return values


def matching_account(user: User, name: str) -> Account | None:
    """An account ``user`` may see named ``name`` (in any case), the oldest first."""
    name = " ".join(name.split())
    if not name:
        return None
    return access.visible(user, Account).filter(name__iexact=name).order_by("pk").first()


def create_from_sender(
    user: User, sender: Sender, module: str, data: dict[str, Any], account_name: str = ""
) -> Record:
    """Make ``sender`` a ``module`` record from form ``data``, as ``user``.

    For a Contact with no account chosen, ``account_name`` names its account: one the
    user may see with that name, else a new one (the user must be allowed to create
    accounts). Everything is written in one transaction; the past mail of the record's
    addresses is linked right after it commits, before this returns. Raises
    ``AlreadyKnown`` when a Lead or Contact the user may see has the sender's address, and
    ``crm.actions``' ``RecordInvalid`` and ``NotAllowed``.
    """
    if module not in MODULES:
        raise ValueError(f"Only leads and contacts are made from a sender, not {module!r}.")
    known = known_records(user, sender.address)
    if known:
        raise AlreadyKnown(known[0])
    data = {**data}
    data.setdefault("email", sender.address)
    account_name = " ".join(account_name.split())
    with transaction.atomic():
        if module == Module.CONTACTS and not data.get("account") and account_name:
            account = matching_account(user, account_name)
            if account is None:
                account = _new_account(user, sender, account_name)
            data["account"] = account.pk
        # Linking is an eager consumer of the outbox: it runs as this commits, so the
        # record's page shows the past mail at once (a large history goes to a job).
        return actions.create_record(user, module, data)


def _new_account(user: User, sender: Sender, name: str) -> Record:
    """An account named ``name``, with the sender's domain unless it is free mail."""
    domain = sender.address.rpartition("@")[2]
    values = {"name": name}
    if signatures.company_from_domain(domain):  # not a free mail service's domain
        values["domain"] = domain
    try:
        return actions.create_record(user, Module.ACCOUNTS, values)
    except actions.RecordInvalid as exc:  # told as the field the user filled in
        raise actions.RecordInvalid(
            [{"field": "account_name", "message": e["message"]} for e in exc.errors]
        ) from None
