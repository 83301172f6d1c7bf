"""Open and click rates over time (SPEC F9 figures in SPEC F17's reports).

Over the messages a report counts (``queries.filtered_messages``: what the viewer may see,
in the period, through the source) that were sent from crmail **tracked** (the open pixel
and tracked links, ``insights.MessageInsight.tracked``), per month, week or day of their
date in the organisation's time zone: how many were tracked, opened by a person, clicked
by a person (hits marked as scanners left out, as on a message's page), and both. The
rates are of the tracked messages. One grouped statement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek

from crmail.insights.models import Click, MessageInsight, Open
from crmail.mailboxes.models import Source
from crmail.people.models import User
from crmail.reports.queries import (
    PERIODS,
    BadReport,
    Filters,
    check,
    filtered_messages,
    period_rows,
    zone,
)

COLUMNS = ["label", "tracked", "opened", "clicked", "open_rate", "click_rate"]
_TRUNC = {"month": TruncMonth, "week": TruncWeek, "day": TruncDay}


def rate(part: int, whole: int) -> int | None:
    """A percentage, rounded; None of nothing."""
    return round(100 * part / whole) if whole else None


@dataclass(frozen=True)
class EngagementRow:
    key: str
    label: str
    tracked: int
    opened: int
    clicked: int
    both: int  # opened and clicked

    @property
    def open_rate(self) -> int | None:
        return rate(self.opened, self.tracked)

    @property
    def click_rate(self) -> int | None:
        return rate(self.clicked, self.tracked)


@dataclass
class Engagement:
    period: str
    filters: Filters
    rows: list[EngagementRow] = field(default_factory=list)
    title = "Open and click rates"

    @property
    def name(self) -> str:
        return f"open-and-click-rates-by-{self.period}"

    @property
    def columns(self) -> list[str]:
        return [self.period, *COLUMNS]

    def table(self) -> list[list[Any]]:
        return [
            [r.key, r.label, r.tracked, r.opened, r.clicked, r.open_rate, r.click_rate]
            for r in self.rows
        ]


def engagement(viewer: User, period: str, filters: Filters | None = None) -> Engagement:
    """Per ``period`` (month, week, day), the tracked mail's opens and clicks."""
    filters = filters or Filters()
    if period not in PERIODS:
        raise BadReport("period", f"Choose a period among: {', '.join(PERIODS)}.")
    check(period, filters)
    # The tracked messages as the set the statement starts from (a few thousand): as an
    # EXISTS per message, SQLite asked the visibility rules of every message first.
    tracked = MessageInsight.objects.filter(sent__source=Source.CRMAIL, tracked=True).values(
        "sent__message_id"
    )
    opened = Q(Exists(Open.objects.filter(sent__message_id=OuterRef("pk"), scanner=False)))
    clicked = Q(Exists(Click.objects.filter(sent__message_id=OuterRef("pk"), scanner=False)))
    rows = (
        filtered_messages(viewer, filters)  # tracked mail only
        .filter(pk__in=tracked)
        .annotate(report_period=_TRUNC[period]("date", tzinfo=zone()))
        .values("report_period")
        .annotate(
            tracked=Count("pk"),
            opened=Count("pk", filter=opened),
            clicked=Count("pk", filter=clicked),
            both=Count("pk", filter=opened & clicked),
        )
        .order_by()
    )
    counts = {
        r["report_period"]: (r["tracked"], r["opened"], r["clicked"], r["both"]) for r in rows
    }
    found = Engagement(period, filters)
    found.rows = [
        EngagementRow(key, label, *figures)
        for key, label, figures in period_rows(period, counts, (0, 0, 0, 0))
    ]
    return found
