"""Email authentication (SPEC F10), for administrators: the domains and their state; the
wizard (add a domain and the address for its code → enter the code → the records to
publish, with copy buttons → Validate, answering Authenticated or each problem in words);
removing a domain. Every change goes through ``crmail.domains.actions``, like the API's
and the command's."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crmail.domains import actions, queries
from crmail.domains.models import Domain, State
from crmail.mail import verification
from crmail.web.domain_forms import CodeForm, DomainForm, ResendForm
from crmail.web.views.settings import admin_required


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@admin_required
def domain_list(request: HttpRequest) -> HttpResponse:
    form = DomainForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            domain = actions.add(
                form.cleaned_data["domain"], by=request.user, code_to=form.cleaned_data["address"]
            )
        except actions.Invalid as exc:
            form.add_refusal(exc)
        else:
            messages.success(request, f"A code is on its way to {domain.code_address}.")
            return redirect("web:domain_detail", pk=domain.pk)
    return render(
        request, "web/settings/domains.html", {"domains": list(queries.domains()), "form": form}
    )


def _detail_context(domain: Domain, **forms: Any) -> dict[str, Any]:
    waiting = (
        verification.waiting(actions.PURPOSE, domain.name)
        if domain.state == State.UNVERIFIED
        else None
    )
    return {
        "domain": domain,
        "records": queries.records(domain) if domain.state != State.UNVERIFIED else [],
        "waiting": waiting,
        "code_form": forms.get("code_form") or CodeForm(),
        "resend_form": forms.get("resend_form") or ResendForm(),
        "validate_error": forms.get("validate_error", ""),
    }


@admin_required
def domain_detail(request: HttpRequest, pk: int) -> HttpResponse:
    domain = get_object_or_404(Domain, pk=pk)
    return render(request, "web/settings/domain_detail.html", _detail_context(domain))


@admin_required
@require_POST
def domain_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    domain = get_object_or_404(Domain, pk=pk)
    form = CodeForm(request.POST)
    if form.is_valid():
        try:
            actions.confirm(domain, form.cleaned_data["code"], by=request.user)
        except actions.Invalid as exc:
            form.add_refusal(exc)
        else:
            messages.success(
                request, f"{domain.name} is yours. Publish these records, then press Validate."
            )
            return redirect("web:domain_detail", pk=domain.pk)
    context = _detail_context(domain, code_form=form)
    return render(request, "web/settings/domain_detail.html", context, status=422)


@admin_required
@require_POST
def domain_resend(request: HttpRequest, pk: int) -> HttpResponse:
    domain = get_object_or_404(Domain, pk=pk)
    form = ResendForm(request.POST)
    if form.is_valid():
        try:
            actions.resend_code(domain, by=request.user, code_to=form.cleaned_data["address"])
        except actions.Invalid as exc:
            form.add_refusal(exc)
        else:
            messages.success(request, f"A new code is on its way to {domain.code_address}.")
            return redirect("web:domain_detail", pk=domain.pk)
    context = _detail_context(domain, resend_form=form)
    return render(request, "web/settings/domain_detail.html", context, status=422)


@admin_required
@require_POST
def domain_validate(request: HttpRequest, pk: int) -> HttpResponse:
    """Look the records up now; htmx gets the status part of the page back."""
    domain = get_object_or_404(Domain, pk=pk)
    error = ""
    try:
        actions.validate(domain, by=request.user)
    except actions.Invalid as exc:
        error = str(exc)
    if _is_htmx(request):
        context = _detail_context(domain, validate_error=error)
        return render(request, "web/settings/_domain_status.html", context)
    if error:
        messages.error(request, error)
    return redirect("web:domain_detail", pk=domain.pk)


@admin_required
def domain_delete(request: HttpRequest, pk: int) -> HttpResponse:
    domain = get_object_or_404(Domain, pk=pk)
    if request.method == "POST":
        actions.delete(domain, by=request.user)
        messages.success(
            request,
            f"{domain.name} is removed: mail from it is no longer signed. Its DKIM record "
            f"({domain.dkim_name}) can go from DNS.",
        )
        return redirect("web:domains")
    return render(request, "web/settings/domain_delete.html", {"domain": domain})
