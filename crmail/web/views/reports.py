"""``/reports/``: email reports (SPEC F17) — grouped counts of the mail the viewer may see,
as a table and a chart drawn on the server, and as CSV or XLSX (``?format=``).

Counting is ``crmail.reports.queries`` (through the visibility layer); the files are
``crmail.reports.export``, the same the API gives; the chart's geometry is
``crmail.reports.charts``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crmail.reports import charts, export, queries
from crmail.web.report_forms import ReportForm

FILES = {
    "csv": (export.CSV_TYPE, "csv"),
    "xlsx": (export.XLSX_TYPE, "xlsx"),
}


@login_required
def reports(request: HttpRequest) -> HttpResponse:
    form = ReportForm(request.GET or {"group_by": "month"})
    context: dict[str, Any] = {"form": form, "report": None, "chart": None, "query": ""}
    if form.is_valid():
        report = queries.email_report(request.user, form.cleaned_data["group_by"], form.filters())
        wanted = request.GET.get("format", "")
        if wanted in FILES:
            content_type, extension = FILES[wanted]
            data = export.to_csv(report).encode() if wanted == "csv" else export.to_xlsx(report)
            response = HttpResponse(data, content_type=content_type)
            name = export.filename(report, extension)
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        query = request.GET.copy()
        query.pop("format", None)
        if not query:
            query["group_by"] = "month"
        context.update(
            report=report,
            chart=charts.chart(report),
            query=query.urlencode(),
            group_label=queries.GROUPS[report.group_by],
        )
    return render(request, "web/reports.html", context)
