"""Email reports (SPEC F17, decision 059) in the API.

``GET /reports/emails?group_by=…&after=…&before=…&source=…&format=json|csv|xlsx``: the
messages you may see, counted by user, source, month, week, day, record type, deal stage
or template. JSON is ``{"columns": [...], "rows": [[...], ...], "total": N}``; CSV and
XLSX are the same table with a header row.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from crmail.api.auth import current_user
from crmail.api.errors import Invalid
from crmail.api.schemas import errors_doc
from crmail.reports import export, queries

router = Router(tags=["Reports"])

GroupBy = Literal["user", "source", "month", "week", "day", "record_type", "stage", "template"]
SourceName = Literal["imap", "pop3", "gmail", "graph", "crmail", "dropbox"]


class ReportParams(Schema):
    group_by: GroupBy = Field("month", description="What the rows are.")
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
    filters = queries.Filters(after=params.after, before=params.before, source=params.source)
    try:
        report = queries.email_report(user, params.group_by, filters)
    except queries.BadReport as bad:
        raise Invalid.one(bad.field, str(bad)) from None
    if params.format == "csv":
        return _file(
            export.to_csv(report).encode(), export.CSV_TYPE, export.filename(report, "csv")
        )
    if params.format == "xlsx":
        return _file(export.to_xlsx(report), export.XLSX_TYPE, export.filename(report, "xlsx"))
    return {"columns": report.columns, "rows": report.table(), "total": report.total}


def _file(data: bytes, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
