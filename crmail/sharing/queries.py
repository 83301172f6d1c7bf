"""Reading sharing settings for people: the admin's overview and one user's summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Prefetch

from crmail.config.words import count
from crmail.people.models import User
from crmail.sharing.models import Audience, Mode, ShareTarget, SharingSetting


@dataclass(frozen=True)
class Summary:
    email: str
    active: bool
    mode: str  # private, public, custom ("private" when the user has no setting)
    audience: str
    shared_with: str  # in words: "everyone who can access the record", names, or "-"
    excluded: list[str]
    shared_records: int
    locked: bool

    @property
    def mode_label(self) -> str:
        return str(Mode(self.mode).label)

    @property
    def mode_words(self) -> str:
        if self.mode == Mode.PUBLIC:
            return f"public, shared with {self.shared_with}"
        if self.mode == Mode.CUSTOM:
            return f"custom, {count(self.shared_records, 'record')} shared"
        return "private"


def summaries(users: Iterable[User]) -> list[Summary]:
    """One ``Summary`` per user, in four queries whatever the number of users."""
    users = list(users)
    settings = {
        s.pk: s
        for s in SharingSetting.objects.filter(user__in=users).prefetch_related(
            Prefetch("targets", ShareTarget.objects.select_related("user", "group")),
            "excluded_domains",
            "shared_records",
        )
    }
    return [_summary(user, settings.get(user.pk)) for user in users]


def summary(user: User) -> Summary:
    return summaries([user])[0]


def _summary(user: User, setting: SharingSetting | None) -> Summary:
    if setting is None:
        return Summary(
            user.email, user.is_active, Mode.PRIVATE, Audience.EVERYONE, "-", [], 0, False
        )
    if setting.mode != Mode.PUBLIC:
        shared_with = "-"
    elif setting.audience == Audience.EVERYONE:
        shared_with = "everyone who can access the record"
    else:
        names = sorted(
            t.user.email if t.user_id else f"group {t.group.name}"  # type: ignore[union-attr]
            for t in setting.targets.all()
        )
        shared_with = ", ".join(names) or "nobody but the user's superiors"
    return Summary(
        email=user.email,
        active=user.is_active,
        mode=setting.mode,
        audience=setting.audience,
        shared_with=shared_with,
        excluded=[d.domain for d in setting.excluded_domains.all()],
        shared_records=len(setting.shared_records.all()),
        locked=setting.locked,
    )


@dataclass(frozen=True)
class ConnectChoice:
    """What the mailbox connect form offers: the mode preselected, and whether the owner
    may change it (an administrator may have locked it)."""

    mode: str
    locked: bool


def connect_choice(owner: User, actor: User | None) -> ConnectChoice:
    """The organisation's default for a first mailbox; the owner's own setting once they
    have connected one (or when it is locked, as the actor cannot change it)."""
    from crmail.sharing.actions import organisation_default

    setting = SharingSetting.objects.filter(user=owner).first()
    locked = bool(setting and setting.locked and actor is not None and not actor.is_admin)
    if setting is not None and (setting.locked or owner.mailboxes.exists()):
        return ConnectChoice(setting.mode, locked)
    return ConnectChoice(organisation_default(), False)
