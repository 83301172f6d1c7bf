"""Whether mail sent from crmail is tracked (SPEC F9): the organisation's switch (off until
an administrator turns it on) and crmail's public address (``CRMAIL_PUBLIC_URL``), which
recipients' mail programs must reach. Each reason it is not, in words."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from crmail.insights.models import InsightsSetting
from crmail.people.models import User


class NotAllowed(PermissionError):
    """Only administrators turn tracking on or off."""


@dataclass(frozen=True)
class State:
    switched_on: bool  # the organisation's switch
    public_url: str  # "" when not set
    words: str  # what the composer and the settings page say

    @property
    def tracking(self) -> bool:
        """Mail goes out with the pixel and tracked links."""
        return self.switched_on and bool(self.public_url)


NO_PUBLIC_URL = (
    "Email tracking is on, but crmail has no public address (CRMAIL_PUBLIC_URL) that "
    "recipients' mail programs could reach: mail goes out untracked until an administrator "
    "sets it."
)


def state() -> State:
    switched_on = InsightsSetting.objects.filter(pk=1, tracking=True).exists()
    url = settings.CRMAIL_PUBLIC_URL
    if not switched_on:
        words = "Email tracking is off for the organisation: mail goes out untracked."
    elif not url:
        words = NO_PUBLIC_URL
    else:
        words = (
            "Email tracking is on: opens and link clicks of this email are recorded, and "
            "shown to everyone who may see it."
        )
    return State(switched_on, url, words)


def set_tracking(actor: User, on: bool) -> State:
    """Turn the organisation's tracking on or off (administrators only)."""
    if not actor.is_admin:
        raise NotAllowed("Only administrators turn email tracking on or off.")
    with transaction.atomic():
        InsightsSetting.objects.update_or_create(
            pk=1, defaults={"tracking": on, "updated_by": actor}
        )
    return state()
