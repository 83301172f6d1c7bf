"""Organisation addresses seen from the mailboxes (SPEC F16, decision 055): the From
choices a user has, and whether replies to an organisation address reach crmail.

Replies to ``sales@`` are tracked only when crmail syncs a mailbox that receives them:
an active mailbox whose own address is ``sales@``, connected over IMAP or POP3 (its mail
is stored, linked to records and shared as its owner's sharing setting says). A mailbox
of that address read through the Gmail API or Microsoft Graph, or not active, does not
count, and the words say why. crmail cannot see an alias that a provider delivers into
some other mailbox, so it does not guess: such replies are said not to be tracked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models.functions import Lower

from crmail.mailboxes.models import Mailbox, Protocol
from crmail.mailboxes.sending import from_addresses, sender_name
from crmail.orgaddresses import queries as org_queries
from crmail.orgaddresses.models import OrganisationAddress
from crmail.people.models import User

TRACKING_PROTOCOLS = (Protocol.IMAP, Protocol.POP3)


@dataclass(frozen=True)
class Tracking:
    """Whether replies to an address reach crmail; ``words`` says so plainly."""

    tracked: bool
    words: str
    mailbox_id: int | None = None


def _protocol(mailbox: Mailbox) -> str:
    return "POP" if mailbox.protocol == Protocol.POP3 else mailbox.get_protocol_display()


def _owner(mailbox: Mailbox) -> str:
    return mailbox.owner.name or mailbox.owner.email


def tracking(addresses: Iterable[str]) -> dict[str, Tracking]:
    """For each address (lower case), whether replies to it are tracked, in one query."""
    wanted = sorted({a.lower() for a in addresses})
    boxes: dict[str, list[Mailbox]] = {a: [] for a in wanted}
    rows = (
        Mailbox.objects.annotate(address=Lower("email"))
        .filter(address__in=wanted)
        .select_related("owner")
        .order_by("-is_active", "pk")
    )
    for box in rows:
        boxes[box.address].append(box)
    return {a: _tracking_of(a, found) for a, found in boxes.items()}


def _tracking_of(address: str, boxes: list[Mailbox]) -> Tracking:
    for box in boxes:
        if box.is_active and box.owner.is_active and box.protocol in TRACKING_PROTOCOLS:
            return Tracking(
                True,
                f"Replies are tracked: the mailbox {box.email} ({_protocol(box)}) of "
                f"{_owner(box)} receives this address.",
                box.pk,
            )
    if boxes:
        box = boxes[0]
        why = (
            f"is read through {'the ' if box.protocol == Protocol.GMAIL else ''}"
            f"{box.get_protocol_display()}, not over IMAP or POP"
            if box.protocol not in TRACKING_PROTOCOLS
            else "is not active"
            if not box.is_active
            else "belongs to a deactivated user"
        )
        return Tracking(
            False,
            f"Replies are not tracked: the mailbox {box.email} of {_owner(box)} {why}. "
            "Connect it over IMAP or POP to see replies in crmail.",
        )
    return Tracking(
        False,
        f"Replies are not tracked: no mailbox connected over IMAP or POP receives {address}; "
        "connect it to see replies in crmail.",
    )


@dataclass(frozen=True)
class OrgSender:
    """An organisation address as a From choice: its label and its tracking."""

    address: str
    label: str
    tracking: Tracking


def organisation_senders(user: User, mailbox: Mailbox | None) -> list[OrgSender]:
    """The verified organisation addresses ``user`` may send as through ``mailbox``
    (leaving out those that are the mailbox's own), with their tracking."""
    if mailbox is None:
        return []
    own = set(from_addresses(mailbox))
    rows: list[OrganisationAddress] = [
        o for o in org_queries.usable_by(user) if o.address not in own
    ]
    tracked = tracking(o.address for o in rows)
    name = sender_name(mailbox, user)
    return [
        OrgSender(
            o.address,
            f"{o.name or name} <{o.address}>" if (o.name or name) else o.address,
            tracked[o.address],
        )
        for o in rows
    ]
