"""Storage over time (SPEC F11): each user's figure at the end of each day, for the growth
chart and each user's growth; written from the counters every few minutes (the last
write of a day stays)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from crmail.mailboxes import usage
from crmail.storage.models import UsageDay


def today() -> date:
    return timezone.localdate()


def snapshot(day: date | None = None) -> int:
    """Write ``day``'s (today's) figure of every user with mail from the counters; the
    number of rows written."""
    day = day or today()
    figures = usage.by_user()
    with transaction.atomic():
        have = {
            row.user_id: row for row in UsageDay.objects.filter(day=day, user_id__in=list(figures))
        }
        changed, fresh = [], []
        for user_id, figure in figures.items():
            row = have.get(user_id)
            if row is None:
                fresh.append(
                    UsageDay(day=day, user_id=user_id, messages=figure.messages, bytes=figure.size)
                )
            elif (row.messages, row.bytes) != (figure.messages, figure.size):
                row.messages, row.bytes = figure.messages, figure.size
                changed.append(row)
        UsageDay.objects.bulk_create(fresh, ignore_conflicts=True)
        UsageDay.objects.bulk_update(changed, ["messages", "bytes"])
    return len(fresh) + len(changed)


def growth(days: int = 90, now_bytes: int | None = None) -> list[tuple[date, int]]:
    """The organisation's figure on each of the last ``days`` days that has one (oldest
    first), today's from the counters (``now_bytes``) when given."""
    end = today()
    start = end - timedelta(days=days - 1)
    totals: dict[date, int] = defaultdict(int)
    for day, size in UsageDay.objects.filter(day__gte=start, day__lte=end).values_list(
        "day", "bytes"
    ):
        totals[day] += size
    if now_bytes is not None:
        totals[end] = now_bytes
    return sorted(totals.items())


def grown_since(days: int = 30) -> dict[int, int]:
    """{user id: bytes added over the last ``days`` days} (from the oldest figure in that
    window to the counters now; users without an older figure grew by all they hold)."""
    start = today() - timedelta(days=days)
    first: dict[int, int] = {}
    rows = UsageDay.objects.filter(day__gte=start).order_by("day").values_list("user_id", "bytes")
    for user_id, size in rows:
        first.setdefault(user_id, size)
    return {
        user_id: figure.size - first.get(user_id, 0) for user_id, figure in usage.by_user().items()
    }
