"""Organisation addresses (administrators; SPEC F16, decision 055): the list with whether
replies to each are tracked, adding one (its code mailed at once), entering the code,
changing who may send as it, deleting it. Every change goes through
``crmail.orgaddresses.actions``, like the API's."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from crmail.mailboxes.org_addresses import tracking
from crmail.orgaddresses import actions, queries
from crmail.orgaddresses.models import OrganisationAddress
from crmail.web.org_address_forms import CodeForm, OrgAddressForm
from crmail.web.views.settings import admin_required


def _rows(orgs: list[OrganisationAddress]) -> list[dict[str, Any]]:
    tracked = tracking(o.address for o in orgs)
    return [
        {
            "org": o,
            "who": queries.who_may(o),
            "tracking": tracked[o.address],
            "waiting": None if o.verified else queries.waiting_code(o),
        }
        for o in orgs
    ]


@admin_required
def org_address_list(request: HttpRequest) -> HttpResponse:
    rows = _rows(list(queries.all_addresses()))
    return render(request, "web/settings/org_addresses.html", {"rows": rows})


def _mail_code(request: HttpRequest, org: OrganisationAddress) -> None:
    try:
        sent = actions.send_code(org, request.user)  # type: ignore[arg-type]
    except actions.CodeNotSent as exc:
        messages.error(request, f"No code was sent: {exc}")
    else:
        messages.success(
            request, f"A code was mailed to {sent.address}: enter it here to verify the address."
        )


@admin_required
@require_http_methods(["GET", "POST"])
def org_address_create(request: HttpRequest) -> HttpResponse:
    form = OrgAddressForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = actions.add(request.user, **form.values())  # type: ignore[arg-type]
        except actions.Invalid as exc:
            form.add_action_errors(exc)
        else:
            _mail_code(request, org)
            return redirect("web:org_address_detail", pk=org.pk)
    return render(request, "web/settings/org_address_form.html", {"form": form})


@admin_required
@require_http_methods(["GET", "POST"])
def org_address_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The address: its state, the code to enter, who may send as it (changed here)."""
    org = get_object_or_404(queries.all_addresses(), pk=pk)
    form = OrgAddressForm(request.POST or None, instance=org)
    if request.method == "POST" and form.is_valid():
        before = org.address
        try:
            actions.change(org, request.user, **form.values())  # type: ignore[arg-type]
        except actions.Invalid as exc:
            form.add_action_errors(exc)
        else:
            if org.address != before:
                messages.success(request, f"Saved. {org.address} is a new address to verify.")
                _mail_code(request, org)
            else:
                messages.success(request, f"{org.address} was saved.")
            return redirect("web:org_address_detail", pk=org.pk)
    return _detail(request, org, form, CodeForm())


def _detail(
    request: HttpRequest, org: OrganisationAddress, form: OrgAddressForm, code: CodeForm
) -> HttpResponse:
    [row] = _rows([org])
    context = {**row, "form": form, "code_form": code}
    return render(request, "web/settings/org_address_detail.html", context)


@admin_required
@require_POST
def org_address_code(request: HttpRequest, pk: int) -> HttpResponse:
    org = get_object_or_404(OrganisationAddress, pk=pk)
    _mail_code(request, org)
    return redirect("web:org_address_detail", pk=org.pk)


@admin_required
@require_POST
def org_address_verify(request: HttpRequest, pk: int) -> HttpResponse:
    org = get_object_or_404(queries.all_addresses(), pk=pk)
    code = CodeForm(request.POST)
    if code.is_valid():
        try:
            actions.verify(org, request.user, code.cleaned_data["code"])  # type: ignore[arg-type]
        except actions.Invalid as exc:
            code.add_action_errors(exc)
        else:
            messages.success(
                request, f"{org.address} is verified: the users allowed may now send as it."
            )
            return redirect("web:org_address_detail", pk=org.pk)
    return _detail(request, org, OrgAddressForm(instance=org), code)


@admin_required
@require_http_methods(["GET", "POST"])
def org_address_delete(request: HttpRequest, pk: int) -> HttpResponse:
    org = get_object_or_404(OrganisationAddress, pk=pk)
    if request.method == "POST":
        actions.delete(org, request.user)  # type: ignore[arg-type]
        messages.success(
            request, f"{org.address} was deleted: no one sends as it from crmail any more."
        )
        return redirect("web:org_addresses")
    return render(request, "web/settings/org_address_delete.html", {"org": org})
