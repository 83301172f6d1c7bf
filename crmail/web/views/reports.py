"""``/reports/``: email reports (SPEC F17) — grouped counts of the mail the viewer may see
and response times per user, each as a table and a chart drawn on the server, and as CSV
or XLSX (``?format=``; ``&table=response-times`` for the response times).

Counting is ``crmail.reports.queries`` and ``crmail.reports.response_times`` (through the
visibility layer); the files are ``crmail.reports.export``, the same the API gives; the
charts' geometry is ``crmail.reports.charts``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crmail.reports import charts, export, queries, response_times
from crmail.web.report_forms import ReportForm


@login_required
def reports(request: HttpRequest) -> HttpResponse:
    form = ReportForm(request.GET or {"group_by": "month"})
    context: dict[str, Any] = {"form": form, "report": None, "chart": None, "query": ""}
    if not form.is_valid():
        return render(request, "web/reports.html", context)
    wanted = request.GET.get("format", "")
    if request.GET.get("table") == "response-times":
        file = export.download(response_times.response_times(request.user, form.filters()), wanted)
    else:
        report = queries.email_report(request.user, form.cleaned_data["group_by"], form.filters())
        file = export.download(report, wanted)
    if file is not None:
        return file
    times = response_times.response_times(request.user, form.filters())
    query = request.GET.copy()
    for name in ("format", "table"):
        query.pop(name, None)
    if not query:
        query["group_by"] = "month"
    context.update(
        report=report,
        chart=charts.chart(report),
        times=times,
        times_chart=charts.response_chart(times),
        query=query.urlencode(),
        group_label=queries.GROUPS[report.group_by],
    )
    return render(request, "web/reports.html", context)
