"""Filing mail that reached a dropbox on its record (SPEC F6), after it is stored.

The correspondents of a message Bcc'd to the dropbox are its To and Cc addresses that are
not the sender's own (nor dropbox addresses). A message with none, such as a conversation
forwarded to the dropbox, is searched with the user's pattern (``dropbox.patterns``).
Of the first correspondent that a contact the user may view has as an address:

1. that contact's most recently modified deal whose stage's probability is not 0 (of the
   deals the user may view);
2. else the contact itself.

With no such contact, a lead with the address (that the user may view) gets it; with no
lead either, the message stays unfiled: stored, visible to its sender (search
``source:dropbox``, the dropbox card's list), and linked by address like any mail once a
record with the address exists. Each filing is a ``Link`` with reason "BCC dropbox";
filing is safe to run twice (the ``Delivery`` says it was done; the link is unique).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crmail.crm.models import Contact, Deal, EmailAddress, Lead
from crmail.dropbox import addresses, patterns, queries
from crmail.dropbox.models import Delivery, FiledAs
from crmail.linking.links import LINK_ROLES, link_dropbox
from crmail.linking.models import Module
from crmail.mail.ingest import parse_stored
from crmail.mail.models import Message, ParseState, Participant
from crmail.mail.store import raw_bytes
from crmail.people import access
from crmail.people.models import User

RECIPIENT_ROLES = tuple(r for r in LINK_ROLES if r != "from")


def file(delivery_id: int) -> Delivery | None:
    """File one delivery (parsing its message first if need be); None when it is gone."""
    delivery = (
        Delivery.objects.select_related("sent__message", "sent__sender")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.filed_at is not None:
        return delivery
    # Parsed and filed in one transaction: the consumers of ``message.parsed`` and
    # ``message.processed`` (workflow rules among them) see the message on its record.
    with transaction.atomic():
        _file(delivery)
    delivery.refresh_from_db()
    return delivery


def _file(delivery: Delivery) -> None:
    message = delivery.sent.message
    if message.parse_state == ParseState.PENDING:
        parse_stored([message])
        message = Message.objects.get(pk=message.pk)
    user = delivery.sent.sender
    own = addresses.own_addresses(user)
    found = correspondents(message, own)
    forwarded = False
    if not found:
        address = patterns.correspondent(
            raw_bytes(message), message.body_text, queries.pattern_of(user), exclude=own
        )
        if address and not _is_dropbox(address):
            found, forwarded = [address], True
    filed_as, correspondent, module, record_id = _choose(user, found)
    if module and record_id is not None:
        link_dropbox(message, module, record_id, user)
    Delivery.objects.filter(pk=delivery.pk).update(
        filed_at=timezone.now(),
        filed_as=filed_as,
        correspondent=correspondent,
        forwarded=forwarded,
        record_module=module,
        record_id=record_id,
    )


def _is_dropbox(address: str) -> bool:
    at = addresses.domain()
    return bool(at) and address.lower().endswith("@" + at)


def correspondents(message: Message, own: set[str]) -> list[str]:
    """The To and Cc addresses of ``message`` that are neither the sender's own nor
    dropbox addresses, in their order in the headers."""
    rows = (
        Participant.objects.filter(message=message, role__in=RECIPIENT_ROLES, valid=True)
        .order_by("position", "pk")
        .values_list("address", flat=True)
    )
    found: list[str] = []
    for address in rows:
        address = address.lower()
        if address not in own and not _is_dropbox(address) and address not in found:
            found.append(address)
    return found


def _choose(user: User, found: list[str]) -> tuple[str, str, str, int | None]:
    """(filed as, the correspondent's address, module, record id) for the first
    correspondent a record the user may view has; the rule in the module's docstring."""
    if not found:
        return FiledAs.NO_CORRESPONDENT, "", "", None
    contact = _first_with_address(user, Contact, found)
    if contact is not None:
        address, contact_id = contact
        deal = (
            access.visible(user, Deal)
            .filter(contact_id=contact_id)
            .filter(~Q(stage__probability=0))
            .order_by("-modified_at", "-pk")
            .values_list("pk", flat=True)
            .first()
        )
        if deal is not None:
            return FiledAs.DEAL, address, Module.DEALS, deal
        return FiledAs.CONTACT, address, Module.CONTACTS, contact_id
    lead = _first_with_address(user, Lead, found)
    if lead is not None:
        return FiledAs.LEAD, lead[0], Module.LEADS, lead[1]
    return FiledAs.UNKNOWN, found[0], "", None


def _first_with_address(
    user: User, model: type[Contact] | type[Lead], found: list[str]
) -> tuple[str, int] | None:
    """(address, record id) of the first address in ``found`` that a record of ``model``
    the user may view has; of several such records, the most recently modified."""
    field = "contact" if model is Contact else "lead"
    rows = (
        EmailAddress.objects.filter(
            address__in=found, **{f"{field}__in": access.visible(user, model).values("pk")}
        )
        .order_by(f"-{field}__modified_at", f"-{field}_id")
        .values_list(f"{field}_id", "address")
    )
    by_address: dict[str, int] = {}
    for pk, address in rows:
        by_address.setdefault(address, pk)
    for address in found:
        if address in by_address:
            return address, by_address[address]
    return None
