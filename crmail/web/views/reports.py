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

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crmail.people.models import User
from crmail.reports import charts, engagement, export, queries, response_times, saved
from crmail.web.report_forms import ReportForm, SaveReportForm


@login_required
def reports(request: HttpRequest) -> HttpResponse:
    params = request.GET.copy()
    if not params.get("group_by"):
        params["group_by"] = "month"  # a bookmark or a hand-made link may leave it out
    form = ReportForm(params)
    context: dict[str, Any] = {
        "form": form,
        "report": None,
        "chart": None,
        "query": "",
        "saved_reports": [(r, saved.page_path(r)) for r in saved.visible_to(request.user)],
        "save_form": None,
    }
    if not form.is_valid():
        return render(request, "web/reports.html", context)
    user: User = request.user  # type: ignore[assignment]
    filters = form.filters()
    group_by = form.cleaned_data["group_by"]
    period = group_by if group_by in queries.PERIODS else "month"
    wanted = request.GET.get("format", "")
    tables: dict[str, Callable[[], export.Table]] = {
        "response-times": lambda: response_times.response_times(user, filters),
        "open-click-rates": lambda: engagement.engagement(user, period, filters),
    }
    if wanted in export.FORMATS:
        make = tables.get(request.GET.get("table", ""))
        table = make() if make else queries.email_report(user, group_by, filters)
        file = export.download(table, wanted)
        if file is not None:
            return file
    report = queries.email_report(user, group_by, filters)
    times = response_times.response_times(user, filters)
    rates = engagement.engagement(user, period, filters)
    query = params.copy()
    for name in ("format", "table"):
        query.pop(name, None)
    context.update(
        report=report,
        chart=charts.chart(report),
        times=times,
        times_chart=charts.response_chart(times),
        rates=rates,
        rates_chart=charts.engagement_chart(rates),
        query=query.urlencode(),
        save_form=SaveReportForm(initial=form.cleaned_data),
        group_label=queries.GROUPS[report.group_by],
    )
    return render(request, "web/reports.html", context)


@login_required
@require_POST
def report_save(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = SaveReportForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            report = saved.save_report(
                user,
                data["name"],
                data["group_by"],
                form.filters(),
                users=data["share_users"],
                roles=data["share_roles"],
                schedule=data["schedule"] or "",
            )
        except queries.BadReport as bad:
            form.add_error(bad.field if bad.field in form.fields else None, str(bad))
        else:
            messages.success(request, f"The report “{report.name}” was saved.")
            return redirect(saved.page_path(report))
    problems = [
        f"{form.fields[name].label if name in form.fields else 'Report'}: {error}"
        for name, errors in form.errors.items()
        for error in errors
    ]
    messages.error(request, "The report was not saved. " + " ".join(problems))
    return redirect("web:reports")


@login_required
@require_POST
def report_delete(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    report = get_object_or_404(saved.visible_to(user), pk=pk)
    try:
        saved.delete_report(user, report)
    except saved.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    messages.success(request, f"The report “{report.name}” was deleted.")
    return redirect("web:reports")
