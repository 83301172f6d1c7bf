"""Email reports (SPEC F17, decision 059) in the API.

``GET /reports/emails?group_by=…&after=…&before=…&source=…&format=json|csv|xlsx``: the
messages you may see, counted by user, source, month, week, day, record type, deal stage,
template, sentiment or intent (only mail of a ``sentiment`` / ``intent`` when given). JSON
is ``{"columns": [...], "rows": [[...], ...], "total": N}``; CSV and XLSX are the same
table with a header row.

``GET /reports/response-times`` (the same filters and formats): per user, the inbound
customer messages they answered first, and the median and 90th percentile of the time
it took, in seconds.

``GET /reports/open-click-rates?period=month|week|day`` (the same filters and formats):
per period, the tracked mail sent from crmail, how much of it people opened and clicked.

``GET /reports/saved``: the saved reports you may open (yours and those shared with you),
each with the address of the Reports page showing it — with your own figures.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.errors import Invalid
from crmail.api.schemas import INTENT, SENTIMENT, ListParams, Page, errors_doc
from crmail.reports import engagement, export, queries, response_times, saved

router = Router(tags=["Reports"])

GroupBy = Literal[
    "user",
    "source",
    "month",
    "week",
    "day",
    "record_type",
    "stage",
    "template",
    "sentiment",
    "intent",
]
SourceName = Literal["imap", "pop3", "gmail", "graph", "crmail", "dropbox"]


class FilterParams(Schema):
    after: date | None = Field(
        None, description="Only messages dated on or after this day (organisation's time zone)."
    )
    before: date | None = Field(
        None, description="Only messages dated before this day (organisation's time zone)."
    )
    source: SourceName | None = Field(
        None,
        description="Only messages that reached crmail this way: a mailbox's protocol (a "
        "copy you may see), sent from crmail, or received at a BCC Dropbox.",
    )
    format: Literal["json", "csv", "xlsx"] = Field("json", description="The answer's format.")


class ReportParams(FilterParams):
    sentiment: SENTIMENT | None = Field(
        None, description="Only messages email intelligence found of this sentiment."
    )
    intent: INTENT | None = Field(
        None, description="Only messages email intelligence found of this intent."
    )
    group_by: GroupBy = Field("month", description="What the rows are.")


class ReportOut(Schema):
    columns: list[str] = Field(
        description="The group (its key: a user, stage or template id, a source, a period), "
        "label, inbound, outbound, count."
    )
    rows: list[list[str | int]] = Field(description="One per group, in the columns' order.")
    total: int = Field(
        description="Messages counted, each once: a message in two groups (held by two "
        "users, linked to two records) counts in both rows."
    )


_FILES = {
    200: {
        "description": "The report (JSON, or with format=csv or xlsx a file).",
        "content": {
            export.CSV_TYPE.split(";")[0]: {"schema": {"type": "string"}},
            export.XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
DOC = {"responses": {**errors_doc(401, 422)["responses"], **_FILES}}


@router.get("/emails", response={200: ReportOut}, openapi_extra=DOC, summary="Email report")
def email_report(request: HttpRequest, params: Query[ReportParams]) -> Any:
    """The messages you may see, counted by ``group_by``: only what you could open is
    counted (SPEC F5). Periods are in the organisation's time zone, every period between
    the first and the last, empty ones included."""
    user = current_user(request)
    filters = queries.Filters(
        after=params.after,
        before=params.before,
        source=params.source,
        sentiment=params.sentiment,
        intent=params.intent,
    )
    try:
        report = queries.email_report(user, params.group_by, filters)
    except queries.BadReport as bad:
        raise Invalid.one(bad.field, str(bad)) from None
    return export.download(report, params.format) or {
        "columns": report.columns,
        "rows": report.table(),
        "total": report.total,
    }


class ResponseTimesOut(Schema):
    columns: list[str] = Field(
        description="user (id), label, replied (inbound customer messages the user answered "
        "first), median_seconds, p90_seconds (90th percentile, nearest rank)."
    )
    rows: list[list[str | int]] = Field(description="One per user who answered, fastest first.")


@router.get(
    "/response-times",
    response={200: ResponseTimesOut},
    openapi_extra=DOC,
    summary="Response time per user",
)
def response_time_report(request: HttpRequest, params: Query[FilterParams]) -> Any:
    """For each inbound customer message you may see (dated in the period, reaching crmail
    through ``source``), its first reply you may see: the time between them counts for the
    user who replied."""
    user = current_user(request)
    filters = queries.Filters(after=params.after, before=params.before, source=params.source)
    try:
        times = response_times.response_times(user, filters)
    except queries.BadReport as bad:
        raise Invalid.one(bad.field, str(bad)) from None
    return export.download(times, params.format) or {
        "columns": times.columns,
        "rows": times.table(),
    }


class RatesParams(FilterParams):
    period: Literal["month", "week", "day"] = Field("month", description="What the rows are.")


class RatesOut(Schema):
    columns: list[str] = Field(
        description="The period (its key), label, tracked (messages sent from crmail with "
        "the open pixel and tracked links), opened and clicked (by a person: hits marked as "
        "scanners left out), open_rate and click_rate (percent of tracked; null for none)."
    )
    rows: list[list[str | int | None]] = Field(description="One per period, empty ones too.")


@router.get(
    "/open-click-rates",
    response={200: RatesOut},
    openapi_extra=DOC,
    summary="Open and click rates over time",
)
def open_click_rates(request: HttpRequest, params: Query[RatesParams]) -> Any:
    """Of the tracked mail sent from crmail that you may see, dated in each period, how
    much people opened and clicked."""
    user = current_user(request)
    filters = queries.Filters(after=params.after, before=params.before, source=params.source)
    try:
        found = engagement.engagement(user, params.period, filters)
    except queries.BadReport as bad:
        raise Invalid.one(bad.field, str(bad)) from None
    return export.download(found, params.format) or {
        "columns": found.columns,
        "rows": found.table(),
    }


class SavedOut(Schema):
    id: int
    name: str
    owner_id: int
    mine: bool = Field(description="You saved it (and may delete it); else it is shared with you.")
    group_by: GroupBy
    after: date | None
    before: date | None
    source: SourceName | None
    sentiment: SENTIMENT | None = None
    intent: INTENT | None = None
    schedule: Literal["daily", "weekly", "monthly"] | None = Field(
        description="Mailed to its owner, counting the period just ended; null: not mailed."
    )
    url: str = Field(description="The Reports page showing it, with the opener's figures.")


@router.get(
    "/saved",
    response={200: Page[SavedOut]},
    openapi_extra=errors_doc(401, 422),
    summary="Saved reports",
)
def list_saved(request: HttpRequest, params: Query[ListParams]) -> dict[str, Any]:
    """The saved reports you may open, by name."""
    user = current_user(request)
    page = records.page(saved.visible_to(user).order_by("name", "pk"), params)
    page["items"] = [
        {
            "id": r.pk,
            "name": r.name,
            "owner_id": r.owner_id,
            "mine": r.owner_id == user.pk,
            "group_by": r.group_by,
            "after": r.after,
            "before": r.before,
            "source": r.source or None,
            "sentiment": r.sentiment or None,
            "intent": r.intent or None,
            "schedule": r.schedule or None,
            "url": request.build_absolute_uri(saved.page_path(r)),
        }
        for r in page["items"]
    ]
    return page
