"""``/reports/``: email reports (SPEC F17) — grouped counts of the mail the viewer may see,
response times per user, open and click rates, each as a table and a chart drawn on the
server, and as CSV or XLSX (``?format=``; ``&table=response-times`` or
``&table=open-click-rates`` for the other tables: the open and click rates are by the
chosen period, else by month).

Counting is ``crmail.reports`` (``queries``, ``response_times``, ``engagement``: through
the visibility layer); the files are ``crmail.reports.export``, the same the API gives;
the charts' geometry is ``crmail.reports.charts``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crmail.reports import charts, engagement, export, queries, response_times
from crmail.web.report_forms import ReportForm


@login_required
def reports(request: HttpRequest) -> HttpResponse:
    form = ReportForm(request.GET or {"group_by": "month"})
    context: dict[str, Any] = {"form": form, "report": None, "chart": None, "query": ""}
    if not form.is_valid():
        return render(request, "web/reports.html", context)
    wanted = request.GET.get("format", "")
    group_by = form.cleaned_data["group_by"]
    period = group_by if group_by in queries.PERIODS else "month"
    if request.GET.get("table") == "response-times":
        file = export.download(response_times.response_times(request.user, form.filters()), wanted)
    elif request.GET.get("table") == "open-click-rates":
        rates = engagement.engagement(request.user, period, form.filters())
        file = export.download(rates, wanted)
    else:
        report = queries.email_report(request.user, form.cleaned_data["group_by"], form.filters())
        file = export.download(report, wanted)
    if file is not None:
        return file
    times = response_times.response_times(request.user, form.filters())
    rates = engagement.engagement(request.user, period, form.filters())
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
        rates=rates,
        rates_chart=charts.engagement_chart(rates),
        query=query.urlencode(),
        group_label=queries.GROUPS[report.group_by],
    )
    return render(request, "web/reports.html", context)
