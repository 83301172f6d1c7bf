"""Read side of the dropbox: a user's card (address, pattern, recent mail), and the
refusals administrators see."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from crmail.dropbox import addresses
from crmail.dropbox.models import Delivery, DropboxSetting, Refusal
from crmail.people.models import User

RECENT = 10


def pattern_of(user: User) -> str:
    """``user``'s pattern for forwarded conversations ("" for the default)."""
    found = DropboxSetting.objects.filter(user=user).values_list("forward_pattern", flat=True)
    return found.first() or ""


@dataclass
class Card:
    """What a user's dropbox card shows: ``address`` is "" when no domain is set up."""

    address: str
    pattern: str
    recent: list[Delivery] = field(default_factory=list)


def card(user: User) -> Card:
    """``user``'s dropbox as the card and the API show it (the address made if need be)."""
    if not addresses.domain():
        return Card("", pattern_of(user))
    return Card(addresses.full(addresses.current(user)), pattern_of(user), recent(user))


def recent(user: User, limit: int = RECENT) -> list[Delivery]:
    """The latest mail ``user``'s dropbox received, with its message."""
    return list(
        Delivery.objects.filter(sent__sender=user)
        .select_related("sent__message")
        .order_by("-received_at", "-pk")[:limit]
    )


def refusals() -> QuerySet[Refusal]:
    """What the receiver refused, newest first (administrators only: the caller's check)."""
    return Refusal.objects.select_related("user").order_by("-at", "-pk")
