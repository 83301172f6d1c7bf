"""Email insights in the web app (SPEC F9, decision 057): the administrators' switch
(``/settings/insights/``), each user's scheduled emails (``/scheduled/``, with Cancel),
and the pieces other pages show: a message's opens and clicks, a contact's best time."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from crmail.crm.models import Contact
from crmail.insights import queries, scheduling, switch
from crmail.insights.models import ScheduledSend
from crmail.people.models import User
from crmail.text_forms import CheckedTextForm
from crmail.web.views.settings import admin_required


class SwitchForm(CheckedTextForm, forms.Form):
    tracking = forms.BooleanField(
        label="Track mail sent from crmail: an open pixel and tracked links",
        required=False,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def insights_settings(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    now = switch.state()
    if request.method == "POST":
        form = SwitchForm(request.POST)
        if form.is_valid():
            now = switch.set_tracking(user, form.cleaned_data["tracking"])
            messages.success(
                request, "Email tracking is on." if now.switched_on else "Email tracking is off."
            )
            return redirect("web:insights_settings")
    else:
        form = SwitchForm(initial={"tracking": now.switched_on})
    return render(request, "web/settings/insights.html", {"form": form, "state": now})


@login_required
def scheduled_list(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    return render(request, "web/scheduled.html", {"rows": scheduling.pending(user)})


@login_required
@require_POST
def scheduled_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    try:
        row = scheduling.cancel(user, pk)
    except ScheduledSend.DoesNotExist:
        raise Http404("No such scheduled email.") from None
    except scheduling.NotCancellable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"“{row.subject or '(no subject)'}” was cancelled: it will not be sent."
        )
    return redirect("web:scheduled")


def message_context(message_id: int) -> dict[str, Any]:
    """A message page's opens and clicks (the page has checked the viewer may see it)."""
    return {"insights": queries.for_message(message_id)}


def best_time_context(user: User, record: Any) -> dict[str, Any]:
    """A contact page's best-time card."""
    if not isinstance(record, Contact):
        return {}
    return {"heatmap": queries.heatmap(user, record), "hours": range(0, 24, 3)}
