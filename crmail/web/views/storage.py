"""Email storage (SPEC F11): the administrators' page (the organisation's usage against
its quota, each user's, the largest mailboxes, growth over time drawn as SVG on the
server; the storage added), and "Fetch the whole message" on a message whose body waits.
Changes go through ``storage.actions`` and ``mailboxes.bodies``, like the API's and the
command's."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from crmail.config.words import size
from crmail.mailboxes import bodies, quota
from crmail.storage import actions, chart, queries
from crmail.web.storage_forms import ExtraForm
from crmail.web.views.messages import _message_for
from crmail.web.views.settings import admin_required


@admin_required
def storage_page(request: HttpRequest) -> HttpResponse:
    overview = queries.dashboard()
    form = ExtraForm(request.POST or None, initial={"extra_gb": overview.quota.extra_gb})
    if request.method == "POST" and form.is_valid():
        try:
            changed = actions.set_extra_gb(request.user, form.cleaned_data["extra_gb"])  # type: ignore[arg-type]
        except quota.QuotaError as exc:
            form.add_error("extra_gb", str(exc))
        else:
            messages.success(
                request,
                f"The quota is now {size(changed.total)}, with {changed.extra_gb} GB added.",
            )
            return redirect("web:storage")
    svg = chart.growth_svg(overview.growth, overview.quota.total)
    return render(
        request,
        "web/settings/storage.html",
        {
            "overview": overview,
            "form": form,
            "chart": mark_safe(svg),  # noqa: S308  (numbers and escaped labels only)
        },
    )


@login_required
@require_POST
def message_fetch_body(request: HttpRequest, pk: int) -> HttpResponse:
    """Fetch the body of a message that waits, for anyone who may see the message."""
    message = _message_for(request, pk)
    done = bodies.fetch_now(message.pk)
    if done.stored:
        messages.success(request, "The whole message is here now.")
    elif done.problems:
        messages.error(request, "The body could not be fetched: " + " ".join(done.problems))
    else:
        messages.info(request, "This message is whole already.")
    return redirect("web:message", pk=message.pk)
