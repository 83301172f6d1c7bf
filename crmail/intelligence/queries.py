"""Email intelligence's read side: a message's results as its viewer may see them, and
the filters of lists (sentiment, intent, mail on open deals, this week).

Results are shown only with their message: every reader passes the viewer, and only the
messages ``sharing.visibility`` lets the viewer open get their results (``seen_of``). A
thread's summary is shown only to a viewer who may open every message it was read from.
Nothing is shown while the organisation's switch is off.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, Q, QuerySet
from django.utils import timezone

from crmail.intelligence import switch
from crmail.intelligence.models import IntelligenceSetting, Intent, Result, Sentiment
from crmail.linking.deal_links import on_open_deals
from crmail.mail.models import Message
from crmail.people.models import User
from crmail.sharing.visibility import seen_of

SENTIMENTS = dict(Sentiment.choices)
INTENTS = dict(Intent.choices)


class BadFilter(ValueError):
    """A filter value crmail does not know; ``field`` names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def out(row: Result, *, with_summary: bool = True) -> dict[str, Any]:
    """A result as the API and the pages give it."""
    return {
        "sentiment": row.sentiment,
        "sentiment_score": round(row.sentiment_score, 3),
        "intent": row.intent,
        "summary": row.summary if with_summary else "",
        "reply_text": row.reply_text,
        "signature": row.signature,
        "meetings": row.meetings,
        "language": row.language,
    }


def rows_for(viewer: User, message_ids: Iterable[int]) -> dict[int, tuple[Result, bool]]:
    """Per message ``viewer`` may open: its result and whether its summary may be shown
    (every message it summarises is one the viewer may open too). The results are read
    first, then whether the viewer may open their messages and their summaries' sources,
    in one question to the access layer: none when no message has a result."""
    if not switch.enabled():
        return {}
    wanted = {pk for pk in message_ids if pk}
    rows = list(Result.objects.filter(message_id__in=wanted)) if wanted else []
    if not rows:
        return {}
    sources = {pk for r in rows for pk in (r.summary_of or []) if isinstance(pk, int)}
    seen = seen_of(viewer, {r.message_id for r in rows} | sources)
    return {
        r.message_id: (r, all(pk in seen for pk in (r.summary_of or [])))
        for r in rows
        if r.message_id in seen
    }


def for_messages(viewer: User, message_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The intelligence objects of the messages ``viewer`` may open (absent: none)."""
    return {
        pk: out(row, with_summary=summary_ok)
        for pk, (row, summary_ok) in rows_for(viewer, message_ids).items()
    }


def for_message(viewer: User, message_id: int) -> dict[str, Any] | None:
    return for_messages(viewer, [message_id]).get(message_id)


def badges(message_ids: Iterable[int]) -> dict[int, Result]:
    """The rows a list shows as badges (sentiment and intent), for ``message_ids`` that
    the list read through ``sharing.visibility`` (its own rows: a record's Emails list,
    search's hits, the viewer's own inbox): one query, the switch within it."""
    ids = list(message_ids)
    if not ids:
        return {}
    off = IntelligenceSetting.objects.filter(pk=1, enabled=False)
    rows = Result.objects.filter(message_id__in=ids).exclude(Exists(off))
    return {
        r.message_id: r for r in rows.only("message_id", "sentiment", "sentiment_score", "intent")
    }


# --- filters ---------------------------------------------------------------------------


def week_start(now: datetime | None = None) -> datetime:
    """Monday 00:00 of this week in the organisation's time zone."""
    here = (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE))
    monday = here.date() - timedelta(days=here.weekday())
    return datetime.combine(monday, time.min, tzinfo=here.tzinfo)


@dataclass(frozen=True)
class Filter:
    sentiment: str | None = None
    intent: str | None = None
    open_deals: bool = False  # on a deal the viewer may view, in an open stage
    this_week: bool = False  # dated this week (from Monday, the organisation's time)

    def __bool__(self) -> bool:
        return bool(self.sentiment or self.intent or self.open_deals or self.this_week)

    def params(self) -> dict[str, str]:
        found = {"sentiment": self.sentiment or "", "intent": self.intent or ""}
        if self.open_deals:
            found["deal"] = "open"
        if self.this_week:
            found["period"] = "week"
        return {k: v for k, v in found.items() if v}


# Ready-made filters: (label, filter), by name.
PRESETS: dict[str, tuple[str, Filter]] = {
    "negative-open-deals-week": (
        "Negative mail from open deals this week",
        Filter(sentiment="negative", open_deals=True, this_week=True),
    ),
    "complaints-open-deals-week": (
        "Complaints from open deals this week",
        Filter(intent="complaint", open_deals=True, this_week=True),
    ),
}


def check_sentiment(value: str | None) -> str | None:
    if not value:
        return None
    if value not in SENTIMENTS:
        raise BadFilter(
            "sentiment", f"Choose a sentiment among: {', '.join(SENTIMENTS)} (not {value[:40]!r})."
        )
    return value


def check_intent(value: str | None) -> str | None:
    if not value:
        return None
    if value not in INTENTS:
        raise BadFilter(
            "intent", f"Choose an intent among: {', '.join(INTENTS)} (not {value[:40]!r})."
        )
    return value


def from_params(params: Mapping[str, str]) -> Filter:
    """The filter a page's query string asks (``sentiment``, ``intent``, ``deal=open``,
    ``period=week``, or ``preset``); ``BadFilter`` for a value crmail does not know."""
    preset = params.get("preset") or ""
    if preset:
        if preset not in PRESETS:
            raise BadFilter("preset", f"There is no ready-made filter {preset[:40]!r}.")
        return PRESETS[preset][1]
    deal = params.get("deal") or ""
    if deal not in ("", "open"):
        raise BadFilter("deal", f"deal takes open, not {deal[:40]!r}.")
    period = params.get("period") or ""
    if period not in ("", "week"):
        raise BadFilter("period", f"period takes week, not {period[:40]!r}.")
    return Filter(
        sentiment=check_sentiment(params.get("sentiment")),
        intent=check_intent(params.get("intent")),
        open_deals=deal == "open",
        this_week=period == "week",
    )


def narrowed(viewer: User, messages: QuerySet[Message], wanted: Filter) -> QuerySet[Message]:
    """``messages`` (already what ``viewer`` may see) meeting ``wanted``. With a sentiment
    or an intent asked and the switch off, nothing meets it."""
    if not wanted:
        return messages
    if (wanted.sentiment or wanted.intent) and not switch.enabled():
        return messages.none()
    condition = Q()
    if wanted.sentiment:
        condition &= Q(intelligence__sentiment=wanted.sentiment)
    if wanted.intent:
        condition &= Q(intelligence__intent=wanted.intent)
    if wanted.open_deals:
        condition &= Q(pk__in=on_open_deals(viewer))
    if wanted.this_week:
        condition &= Q(date__gte=week_start())
    return messages.filter(condition)


def meeting(sentiment: str | None, intent: str | None) -> QuerySet[Result, Any]:
    """The ids (``message_id``) of the messages found of this sentiment and intent, read
    from the results alone (SQLite scanned every message for a sentiment otherwise: its
    three values look unselective); none with the switch off."""
    if not switch.enabled():
        return Result.objects.none().values("message_id")
    condition = Q()
    if sentiment:
        condition &= Q(sentiment=sentiment)
    if intent:
        condition &= Q(intent=intent)
    return Result.objects.filter(condition).values("message_id")


def within(viewer: User, wanted: Filter) -> QuerySet[Message] | None:
    """For the inbox (the viewer's own mail): the messages meeting ``wanted``, None for
    no filter."""
    if not wanted:
        return None
    return narrowed(viewer, Message.objects.all(), wanted)
