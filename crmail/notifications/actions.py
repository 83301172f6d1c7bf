"""Writing one's notifications: marking them read, choosing the daily digest.

Every writer acts on the acting user's own rows only: another user's ids are ignored, as
if they did not exist.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from crmail.notifications.models import DigestSetting, Kind, Notification
from crmail.people.models import User

TITLE_LIMIT = Notification._meta.get_field("title").max_length or 400


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


def tell(
    user_ids: Iterable[int],
    message_id: int,
    title: str,
    *,
    excerpt: str = "",
    records: dict[int, tuple[str, int]] | None = None,
    kind: str = Kind.WORKFLOW,
) -> int:
    """Notify each of ``user_ids`` of ``message_id`` (a workflow rule's "notify"): once per
    user, message and kind, so telling again adds nothing. Whether each may see the message
    is the caller's check. ``records``: per user, the record to name (module, id), one they
    may view. The number of rows offered."""
    if len(title) > TITLE_LIMIT:
        title = title[: TITLE_LIMIT - 1] + "…"
    records = records or {}
    rows = [
        Notification(
            user_id=user_id,
            kind=kind,
            message_id=message_id,
            module=records.get(user_id, ("", None))[0],
            record_id=records.get(user_id, ("", None))[1],
            title=title,
            excerpt=excerpt[:300],
        )
        for user_id in dict.fromkeys(user_ids)
    ]
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
