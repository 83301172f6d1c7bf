"""Events (administrators): how far each consumer of the outbox is, the events a consumer
failed on, and the workflow runs whose actions failed, with buttons to try them again."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from crmail.config.words import count
from crmail.events import dispatch
from crmail.events.models import Failure
from crmail.web.views.settings import admin_required
from crmail.web.views.workflows import say_retried
from crmail.workflows import actions as workflow_actions
from crmail.workflows import queries as workflow_queries


@admin_required
def events_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if "run" in request.POST:
            return _retry_runs(request)
        return _retry(request)
    return render(
        request,
        "web/settings/events.html",
        {
            "consumers": dispatch.status(),
            "parked": dispatch.failures(parked=True),
            "retrying": dispatch.failures(parked=False),
            "runs": list(workflow_queries.failing()[:200]),
        },
    )


def _retry(request: HttpRequest) -> HttpResponse:
    raw = request.POST.get("failure", "")
    if raw == "all":
        ids = None
    elif raw.isdigit() and Failure.objects.filter(pk=int(raw)).exists():
        ids = [int(raw)]
    else:
        messages.error(request, "That failed event is gone: it was handled or retried meanwhile.")
        return redirect("web:events")
    result = dispatch.retry(ids)
    if result.handled:
        messages.success(request, f"Handled {count(result.handled, 'event')}.")
    if result.failed:
        messages.error(
            request,
            f"{count(result.failed, 'event')} failed again and "
            f"{'is' if result.failed == 1 else 'are'} parked: the error is below.",
        )
    if not result.handled and not result.failed:
        messages.info(request, "No parked events.")
    return redirect("web:events")


def _retry_runs(request: HttpRequest) -> HttpResponse:
    """Workflow runs whose actions failed, run again (their rule acts as it always does)."""
    raw = request.POST.get("run", "")
    ids = None if raw == "all" else ([int(raw)] if raw.isdigit() else [])
    say_retried(request, workflow_actions.retry_any(ids), "workflow run")
    return redirect("web:events")
