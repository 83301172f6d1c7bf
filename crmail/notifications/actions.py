"""Writing one's notifications: marking them read, choosing the daily digest.

Every writer acts on the acting user's own rows only: another user's ids are ignored, as
if they did not exist.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from crmail.notifications.models import DigestSetting, Notification
from crmail.people.models import User


def mark_read(user: User, ids: Iterable[int] | None = None) -> int:
    """Mark ``user``'s notifications ``ids`` read (None: all of them); the number that were
    unread and now are read."""
    rows = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    return rows.update(read_at=timezone.now())


def wants_digest(user: User) -> bool:
    return DigestSetting.objects.filter(user=user, daily_digest=True).exists()


def set_daily_digest(user: User, on: bool) -> None:
    """Turn ``user``'s daily digest by mail on or off."""
    DigestSetting.objects.update_or_create(user=user, defaults={"daily_digest": on})
