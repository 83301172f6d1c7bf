"""Dropbox addresses: making the first and resolving them (a new one:
``actions.regenerate``). A dropbox takes mail only from its owner's own addresses
(``own_addresses``: the sign-in address, their mailboxes' addresses and the extra From
addresses those send as, as replies leave them out)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from crmail.dropbox.models import DropboxAddress
from crmail.mailboxes.replies import own_addresses as own_addresses
from crmail.people.models import User

PREFIX = "u-"
# Lower-case letters and digits without the look-alikes (0/o, 1/l): 32 symbols, 5 bits
# each; ten of them are 50 bits, which no one guesses through the refused-recipient limit.
ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
LENGTH = 10


class NotConfigured(RuntimeError):
    """CRMAIL_DROPBOX_DOMAIN is not set: there is no dropbox."""


def domain() -> str:
    """The dropbox addresses' domain, lower case; "" when an administrator set none."""
    return str(getattr(settings, "CRMAIL_DROPBOX_DOMAIN", "") or "").lower()


def new_local_part() -> str:
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def full(address: DropboxAddress) -> str:
    """``address`` as mail is sent to it (its local part at the configured domain)."""
    at = domain()
    if not at:
        raise NotConfigured("CRMAIL_DROPBOX_DOMAIN is not set.")
    return f"{address.local_part}@{at}"


def current(user: User) -> DropboxAddress:
    """``user``'s current dropbox address, made the first time it is asked for."""
    found = DropboxAddress.objects.filter(user=user, retired_at__isnull=True).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return DropboxAddress.objects.create(user=user, local_part=new_local_part())
    except IntegrityError:  # made meanwhile by another request (or, once in 2^50, a clash)
        return current(user)


@dataclass(frozen=True)
class Resolved:
    """What a recipient address is to the receiver: ``address`` is set when it is a
    dropbox address (current or retired), ``problem`` says in words why mail to it is
    refused (empty: accepted)."""

    address: DropboxAddress | None
    problem: str = ""


def resolve(recipient: str) -> Resolved:
    """The dropbox address that ``recipient`` names, and whether it takes mail now."""
    local, _, at = recipient.strip().strip("<>").rpartition("@")
    if not local or not domain() or at.lower() != domain():
        return Resolved(None, f"This server takes mail only for dropbox addresses at {domain()}")
    found = DropboxAddress.objects.select_related("user").filter(local_part=local.lower()).first()
    if found is None:
        return Resolved(None, "No such dropbox address")
    if found.retired_at is not None:
        return Resolved(
            found,
            "This dropbox address was replaced by a new one; find the current address in "
            "crmail under My mailboxes",
        )
    if not found.user.is_active:
        return Resolved(found, "This dropbox address belongs to a deactivated user")
    return Resolved(found)
