"""A report as a file: CSV and XLSX (SPEC F17), the rows the page and the API show.

Both start with a header row (``columns``: for a grouped report the group, ``label``,
``inbound``, ``outbound``, ``count``; for response times ``response_times.COLUMNS``). A
text cell that a spreadsheet would read as a formula (a user or template name starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written with a leading
apostrophe, so opening an export never runs anything.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Protocol

from django.http import HttpResponse


class Table(Protocol):
    """What a file is written from: a grouped report, or response times."""

    @property
    def columns(self) -> list[str]: ...

    @property
    def name(self) -> str: ...

    @property
    def title(self) -> str: ...

    def table(self) -> list[list[Any]]: ...


FORMATS = ("csv", "xlsx")
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def filename(report: Table, extension: str) -> str:
    """``email-report-by-month.csv``: ASCII only, safe in a Content-Disposition header."""
    return f"{report.name}.{extension}"


def to_csv(report: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(report.columns)
    for row in report.table():
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def to_xlsx(report: Table) -> bytes:
    """The report as one worksheet, counts as numbers."""
    from openpyxl import Workbook  # tens of modules: only when a file is asked for

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=report.title[:31])
    sheet.append(report.columns)
    for row in report.table():
        sheet.append([_cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def download(report: Table, wanted: str) -> HttpResponse | None:
    """The report as the file ``wanted`` ("csv" or "xlsx"), to download; None for any
    other format (the caller answers in its own way: JSON, a page)."""
    if wanted == "csv":
        data, content_type = to_csv(report).encode(), CSV_TYPE
    elif wanted == "xlsx":
        data, content_type = to_xlsx(report), XLSX_TYPE
    else:
        return None
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename(report, wanted)}"'
    return response
