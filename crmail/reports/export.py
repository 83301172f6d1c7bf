"""A report as a file: CSV and XLSX (SPEC F17), the rows the page and the API show.

Both start with a header row (``Report.columns``: the group, ``label``, ``inbound``,
``outbound``, ``count``). A text cell that a spreadsheet would read as a formula (a user
or template name starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)
is written with a leading apostrophe, so opening an export never runs anything.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from crmail.reports.queries import GROUPS, Report

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def filename(report: Report, extension: str) -> str:
    """``email-report-by-month.csv``: ASCII only, safe in a Content-Disposition header."""
    return f"email-report-by-{report.group_by.replace('_', '-')}.{extension}"


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(report.columns)
    for row in report.table():
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def to_xlsx(report: Report) -> bytes:
    """The report as one worksheet, counts as numbers."""
    from openpyxl import Workbook  # tens of modules: only when a file is asked for

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=f"By {GROUPS[report.group_by].lower()}"[:31])
    sheet.append(report.columns)
    for row in report.table():
        sheet.append([_cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
