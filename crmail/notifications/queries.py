"""Reading one's notifications: the feed (newest first), the unread count, what is new."""

from __future__ import annotations

from django.db.models import QuerySet

from crmail.notifications.models import Notification
from crmail.people.models import User


def feed(user: User, *, unread: bool = False) -> QuerySet[Notification]:
    """``user``'s notifications, newest first (only the unread ones with ``unread``)."""
    rows = Notification.objects.filter(user=user).select_related("live_mail")
    if unread:
        rows = rows.filter(read_at__isnull=True)
    return rows.order_by("-created_at", "-pk")


def unread_count(user: User) -> int:
    """The badge: one COUNT over the partial index of unread rows."""
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def newer_than(user: User, last_id: int, limit: int = 50) -> list[Notification]:
    """``user``'s notifications after id ``last_id``, oldest first (for the live stream)."""
    return list(Notification.objects.filter(user=user, pk__gt=last_id).order_by("pk")[:limit])


def last_id(user: User) -> int:
    """The id of ``user``'s newest notification; 0 when none."""
    return (
        Notification.objects.filter(user=user).order_by("-pk").values_list("pk", flat=True).first()
        or 0
    )
