"""Warnings near the quota (SPEC F11, decision 058).

At 80 %, 95 % and 100 % of the organisation's quota every active administrator is told,
once per crossing: by a notification that opens the storage page, and by mail through
crmail's own mail server (``mail.system``; none is sent when it is not configured). A
level is told again only after usage has fallen below it. A user whose new mail arrives
without its body (at 100 %) is told by a notification, again only once they have read it.
``check`` runs every minute and after anything that changes the quota.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q

from crmail.config.words import count, size
from crmail.mail import system
from crmail.mailboxes import bodies, quota, usage
from crmail.notifications.models import Kind, Notification
from crmail.people.models import User
from crmail.storage.models import Alert

log = logging.getLogger(__name__)

LEVELS = (80, 95, 100)
PAGE = "/settings/storage/"


@dataclass(frozen=True)
class Checked:
    percent: float
    raised: list[int]
    cleared: list[int]
    owners_told: int


def percent(used: int, total: int) -> float:
    """``used`` as a percentage of ``total`` (a quota of nothing is full at once)."""
    if total <= 0:
        return 100.0 if used > 0 else 0.0
    return used * 100 / total


def reached(used: int, total: int) -> set[int]:
    """The levels ``used`` bytes have reached out of ``total``."""
    if total <= 0:
        return set(LEVELS) if used > 0 else set()
    return {level for level in LEVELS if used * 100 >= level * total}


def check() -> Checked:
    """Raise the levels usage has reached (telling administrators of the highest new one),
    clear those it has fallen below, and tell owners whose mail waits for its body."""
    q = quota.current()
    used = usage.organisation_bytes()
    now_reached = reached(used, q.total)
    had = set(Alert.objects.values_list("level", flat=True))
    cleared = sorted(had - now_reached)
    if cleared:
        Alert.objects.filter(level__in=cleared).delete()
    raised: list[int] = []
    for level in sorted(now_reached - had):
        try:
            with transaction.atomic():
                Alert.objects.create(level=level, used=used, quota=q.total)
        except IntegrityError:  # another worker raised it first: it tells
            continue
        raised.append(level)
    if raised:
        _tell_admins(max(raised), used, q)
    return Checked(percent(used, q.total), raised, cleared, tell_owners())


def _admins() -> list[User]:
    return list(
        User.objects.filter(Q(is_superuser=True) | Q(profile__is_admin=True), is_active=True)
    )


def _words(level: int, used: int, q: quota.Quota) -> tuple[str, str]:
    """The title and the text of the warning of ``level``."""
    share = f"{size(used)} of {size(q.total)}"
    if level >= 100:
        title = f"Email storage is full: {share} used"
        text = (
            "New mail keeps its headers, participants and links, but its body waits on the "
            "mail server until there is room again (or someone asks for it). crmail deletes "
            "nothing to make room."
        )
    else:
        title = f"Email storage is {level} % full: {share} used"
        text = (
            "When it is full, new mail keeps its headers, participants and links, but its "
            "body waits on the mail server until there is room."
        )
    advice = (
        "Add storage on the Email storage page (Administration, Email storage), or free "
        "some: the page lists the largest mailboxes."
    )
    return title, f"{text} {advice}"


def _tell_admins(level: int, used: int, q: quota.Quota) -> None:
    title, text = _words(level, used, q)
    admins = _admins()
    Notification.objects.bulk_create(
        [
            Notification(user=admin, kind=Kind.STORAGE, link=PAGE, title=title, excerpt=text[:300])
            for admin in admins
        ]
    )
    if not system.configured():
        return
    for admin in admins:
        try:
            system.send(admin.email, f"crmail: {title}", f"{title}.\n\n{text}\n")
        except system.SystemMailError as exc:
            log.warning("could not mail an administrator about storage: %s", exc)


def tell_owners() -> int:
    """Tell each user with mail waiting for its body, unless an unread notification of
    theirs says so already; the number told."""
    waiting = bodies.owners_waiting()
    if not waiting:
        return 0
    told = set(
        Notification.objects.filter(
            user_id__in=list(waiting), kind=Kind.STORAGE, read_at__isnull=True
        )
        .exclude(message=None)
        .values_list("user_id", flat=True)
    )
    rows = []
    for owner_id, (n, newest) in waiting.items():
        if owner_id in told:
            continue
        rows.append(
            Notification(
                user_id=owner_id,
                kind=Kind.STORAGE,
                message_id=newest,
                title=f"{count(n, 'message')} arrived without the body: email storage is full",
                excerpt=(
                    "Their headers, participants and links are here; each body is fetched "
                    "when there is room again, or at once when you open the message and "
                    "ask for it."
                ),
            )
        )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
