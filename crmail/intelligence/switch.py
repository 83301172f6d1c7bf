"""Whether crmail computes email intelligence (SPEC F15): the organisation's switch, on
unless an administrator turned it off, and the tier of the analysis it runs."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from crmail.intelligence import analysis
from crmail.intelligence.models import IntelligenceSetting, Tier
from crmail.people.models import User


class NotAllowed(PermissionError):
    """Only administrators change the organisation's switch and tier."""


class BadTier(ValueError):
    """A tier this installation cannot run."""


@dataclass(frozen=True)
class State:
    enabled: bool
    tier: str
    tiers: tuple[str, ...]  # the tiers this installation can run

    @property
    def words(self) -> str:
        if not self.enabled:
            return "Email intelligence is off for the organisation: nothing is computed or shown."
        return (
            f"Email intelligence is on ({Tier(self.tier).label.lower()}): new mail is "
            "analysed on this server, shown to whoever may open it."
        )


def runnable_tiers() -> tuple[str, ...]:
    try:
        return tuple(analysis.available_tiers())
    except NotImplementedError:
        return (Tier.DEFAULT,)


def state() -> State:
    row = IntelligenceSetting.objects.filter(pk=1).first()
    tiers = runnable_tiers()
    enabled = True if row is None else row.enabled
    tier = Tier.DEFAULT if row is None else row.tier
    if tier not in tiers:
        tier = Tier.DEFAULT  # the extra was uninstalled: the default tier runs
    return State(enabled, tier, tiers)


def enabled() -> bool:
    return not IntelligenceSetting.objects.filter(pk=1, enabled=False).exists()


def set_state(actor: User, *, enabled: bool, tier: str = Tier.DEFAULT) -> State:
    """Turn email intelligence on or off and choose its tier (administrators only)."""
    if not actor.is_admin:
        raise NotAllowed("Only administrators turn email intelligence on or off.")
    if tier not in runnable_tiers():
        raise BadTier(
            f"The {tier!r} tier cannot run here: choose one of {', '.join(runnable_tiers())}."
        )
    with transaction.atomic():
        IntelligenceSetting.objects.update_or_create(
            pk=1, defaults={"enabled": enabled, "tier": tier, "updated_by": actor}
        )
    return state()
