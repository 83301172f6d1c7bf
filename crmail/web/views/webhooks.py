"""Webhooks (administrators): endpoints, their delivery log, a test call. Every change goes
through ``crmail.webhooks.actions``, like the API's."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crmail.config.words import count
from crmail.web.views.settings import admin_required
from crmail.web.webhook_forms import EndpointForm
from crmail.webhooks import actions
from crmail.webhooks.models import Endpoint

LOG_PAGE = 50


@admin_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    rows = list(Endpoint.objects.order_by("pk"))
    return render(request, "web/settings/webhooks.html", {"endpoints": rows})


@admin_required
def webhook_create(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = actions.create_endpoint(
                form.cleaned_data["url"], form.cleaned_data["kinds"], by=request.user
            )
        except actions.Invalid as exc:
            form.add_action_errors(exc)
        else:
            # The secret is shown in this answer only: never stored in the session.
            response = render(
                request,
                "web/settings/webhook_created.html",
                {"endpoint": endpoint, "secret": secret},
            )
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "web/settings/webhook_form.html", {"form": form})


@admin_required
def webhook_edit(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint, pk=pk)
    form = EndpointForm(
        request.POST or None, initial={"url": endpoint.url, "kinds": endpoint.kinds}
    )
    if request.method == "POST" and form.is_valid():
        try:
            actions.update_endpoint(
                endpoint,
                by=request.user,
                url=form.cleaned_data["url"],
                chosen=form.cleaned_data["kinds"],
            )
        except actions.Invalid as exc:
            form.add_action_errors(exc)
        else:
            messages.success(request, "Webhook saved.")
            return redirect("web:webhook_detail", pk=endpoint.pk)
    return render(request, "web/settings/webhook_form.html", {"form": form, "target": endpoint})


@admin_required
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint, pk=pk)
    page = Paginator(actions.deliveries(endpoint), LOG_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/settings/webhook_detail.html",
        {"endpoint": endpoint, "page": page, "deliveries": page.object_list},
    )


@admin_required
@require_POST
def webhook_enabled(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint, pk=pk)
    on = request.POST.get("enabled") == "on"
    actions.set_enabled(endpoint, on, by=request.user)
    messages.success(
        request,
        "Webhook turned on: new events are sent to it, with what waited meanwhile."
        if on
        else "Webhook turned off: nothing is sent to it until you turn it on.",
    )
    return redirect("web:webhook_detail", pk=endpoint.pk)


@admin_required
@require_POST
def webhook_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint, pk=pk)
    try:
        actions.send_test(endpoint, by=request.user)
    except actions.NotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, "Test sent (webhook.test): its outcome is at the top of the log below."
        )
    return redirect("web:webhook_detail", pk=endpoint.pk)


@admin_required
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint, pk=pk)
    if request.method == "POST":
        logged = endpoint.deliveries.count()
        actions.delete_endpoint(endpoint, by=request.user)
        messages.success(
            request, f"Webhook deleted, with its log of {count(logged, 'delivery', 'deliveries')}."
        )
        return redirect("web:webhooks")
    return render(request, "web/settings/webhook_delete.html", {"endpoint": endpoint})
