"""Mail sharing pages (SPEC F5): the administrators' overview and edit page of every user's
setting, and each user's own page. Both edit pages are one view over ``SharingForm``.

Custom mode is chosen record by record: the Emails card of a record's page holds the
signed-in user's switch (``record_mail_sharing``), and both edit pages list the records
shared, each with "Stop sharing" (``stop_sharing``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from crmail.crm.models import Record
from crmail.linking.models import Module
from crmail.people import access
from crmail.people import actions as people_actions
from crmail.people.models import User
from crmail.sharing import actions, queries
from crmail.sharing.models import SharingSetting
from crmail.sharing.shared_records import record_choice, shared_records
from crmail.sharing.visibility import record_model
from crmail.web.modules import MODULES
from crmail.web.sharing_forms import SharingForm
from crmail.web.views.settings import admin_required


@admin_required
def sharing_list(request: HttpRequest) -> HttpResponse:
    """Every user's setting, active users first; deactivated ones marked."""
    people = list(User.objects.order_by("-is_active", "name", "email"))
    rows = [
        {"user": person, "summary": summary}
        for person, summary in zip(people, queries.summaries(people), strict=True)
    ]
    context = {
        "rows": rows,
        "default_mode": actions.organisation_default(),
        "meanings": [(mode, mode.label, text) for mode, text in actions.MODE_MEANINGS.items()],
    }
    return render(request, "web/settings/sharing.html", context)


@admin_required
@require_POST
def sharing_default(request: HttpRequest) -> HttpResponse:
    """The organisation's default: what new users start with and the connect form offers."""
    try:
        row = actions.set_organisation_default(request.user, request.POST.get("mode", ""))  # type: ignore[arg-type]
    except people_actions.Invalid:
        messages.error(request, "Choose Private, Public or Custom as the default.")
    else:
        messages.success(
            request,
            f"New users' mail sharing now starts {row.get_default_mode_display().lower()}; "
            "existing users keep theirs.",
        )
    return redirect("web:sharing_list")


@admin_required
@require_http_methods(["GET", "POST"])
def sharing_edit(request: HttpRequest, pk: int) -> HttpResponse:
    owner = get_object_or_404(User, pk=pk)
    return _sharing_page(request, owner, own_page=False)


@admin_required
@require_POST
def sharing_lock(request: HttpRequest, pk: int) -> HttpResponse:
    """Lock (or unlock) a user's mail sharing: they can no longer change it themselves."""
    owner = get_object_or_404(User, pk=pk)
    locked = request.POST.get("locked") == "1"
    actions.set_locked(request.user, owner, locked)  # type: ignore[arg-type]
    if locked:
        messages.success(
            request, f"The mail sharing of {owner} is locked: only administrators change it."
        )
    else:
        messages.success(request, f"The mail sharing of {owner} is unlocked.")
    return redirect("web:sharing_edit", pk=owner.pk)


@login_required
@require_http_methods(["GET", "POST"])
def my_sharing(request: HttpRequest) -> HttpResponse:
    return _sharing_page(request, request.user, own_page=True)  # type: ignore[arg-type]


def _sharing_page(request: HttpRequest, owner: User, *, own_page: bool) -> HttpResponse:
    """Show ``owner``'s setting; a valid POST saves it through the writer, then goes back to
    the user's own page or to the administrators' overview.

    The owner sees their locked setting read-only; administrators change any setting.
    """
    actor: User = request.user  # type: ignore[assignment]
    setting = SharingSetting.objects.filter(user=owner).first()
    locked = bool(setting and setting.locked)
    read_only = locked and not actor.is_admin
    status = 200
    summary = queries.summary(owner)
    form = SharingForm(
        request.POST if request.method == "POST" else None,
        owner=owner,
        setting=setting,
        read_only=read_only,
    )
    if request.method == "POST" and "add_suggested" in request.POST and not read_only:
        form = form.with_suggestions()
        whose = "Your" if own_page else "The user's"
        messages.info(
            request, f"{whose} own domain was added to the excluded domains: save to keep it."
        )
    elif request.method == "POST" and form.is_valid():
        try:
            form.save(actor)
        except people_actions.Invalid as exc:
            form.add_action_errors(exc)
        except people_actions.NotAllowed as exc:
            form.add_error(None, str(exc))
            status = 403
        else:
            whose = "Your" if owner.pk == actor.pk else f"{owner}'s"
            messages.success(request, f"{whose} mail sharing was saved.")
            return redirect("web:my_sharing" if own_page else "web:sharing_list")
    context = {
        "form": form,
        "owner": owner,
        "own_page": own_page,
        "locked": locked,
        "read_only": read_only,
        "summary": summary,
        "suggestions": [] if read_only else form.missing_suggestions(),
        # Custom mode: the records shared, those the reader may see (the others counted).
        "shared": shared_records(owner, actor) if summary.mode == "custom" else None,
        "stop_url": reverse("web:my_sharing_stop")
        if own_page
        else reverse("web:sharing_stop", args=[owner.pk]),
    }
    return render(request, "web/settings/sharing_form.html", context, status=status)


# ------------------------------------------------------------------ custom: per record

MAIL_SHARING_TARGET = "mail-sharing"


def record_sharing_context(user: User, module: str, record: Record) -> dict[str, Any]:
    """The Emails card's switch: ``user``'s own synced mail on ``record``, shared or not.

    Shown when the user's mode is custom; otherwise only when the record is shared (the
    choice is kept for when the mode is custom again).
    """
    choice = record_choice(user, module, record.pk)
    return {
        "mail_sharing": {
            "choice": choice,
            "shown": choice.custom or choice.shared,
            "read_only": choice.locked and not user.is_admin,
            "url": reverse("web:record_mail_sharing", args=[module, record.pk]),
            "singular": MODULES[module].singular,
        }
    }


def _is_htmx(request: HttpRequest, target: str) -> bool:
    return (
        request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == target
    )


@login_required
@require_POST
def record_mail_sharing(request: HttpRequest, module: str, pk: int) -> HttpResponse:
    """Share (``shared=1``) or stop sharing (``shared=0``) the signed-in user's synced mail
    on one record. htmx swaps the switch in place; otherwise back to the record's page."""
    user: User = request.user  # type: ignore[assignment]
    mod = MODULES[module]
    record = get_object_or_404(access.visible(user, mod.model), pk=pk)
    shared = request.POST.get("shared") == "1"
    htmx = _is_htmx(request, MAIL_SHARING_TARGET)
    try:
        actions.share_record(user, user, module, record.pk, shared=shared)
    except people_actions.NotAllowed as exc:
        if htmx:  # an error is not swapped in: reload, to show it and the locked switch
            messages.error(request, str(exc))
            return HttpResponse(str(exc), status=403, headers={"HX-Refresh": "true"})
        raise PermissionDenied(str(exc)) from None
    except people_actions.Invalid:
        raise Http404("No such record.") from None
    if shared:
        done = f"Your synced mail on this {mod.singular} is shared with everyone who can see it."
    else:
        done = f"Your synced mail on this {mod.singular} is no longer shared."
    if htmx:
        context = record_sharing_context(user, module, record)
        context["mail_sharing"]["done"] = done
        return render(request, "web/records/_mail_sharing.html", context)
    messages.success(request, done)
    return redirect("web:record_detail", module=module, pk=record.pk)


@login_required
@require_POST
def my_stop_sharing(request: HttpRequest) -> HttpResponse:
    return _stop_sharing(request, request.user, reverse("web:my_sharing"))  # type: ignore[arg-type]


@admin_required
@require_POST
def stop_sharing(request: HttpRequest, pk: int) -> HttpResponse:
    owner = get_object_or_404(User, pk=pk)
    return _stop_sharing(request, owner, reverse("web:sharing_edit", args=[owner.pk]))


def _stop_sharing(request: HttpRequest, owner: User, back: str) -> HttpResponse:
    """Stop sharing ``owner``'s synced mail on the posted record (``module``,
    ``record_id``), one the reader may see, then back to the sharing page."""
    actor: User = request.user  # type: ignore[assignment]
    module = request.POST.get("module", "")
    raw_id = request.POST.get("record_id", "")
    if module not in Module.values or not raw_id.isdigit() or len(raw_id) > 18:
        raise Http404("No such record.")
    record = access.visible(actor, record_model(module)).filter(pk=int(raw_id)).first()
    if record is None:
        raise Http404("No such record.")
    try:
        changed = actions.share_record(actor, owner, module, record.pk, shared=False)
    except people_actions.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except people_actions.Invalid as exc:
        messages.error(request, " ".join(e["message"] for e in exc.errors))
        return redirect(back)
    whose = "your" if owner.pk == actor.pk else f"{owner}'s"
    if changed:
        messages.success(request, f"{record or '(no name)'} no longer shows {whose} synced mail.")
    else:
        messages.info(request, f"{record or '(no name)'} was not shared.")
    return redirect(back)
