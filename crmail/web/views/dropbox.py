"""The BCC Dropbox in the web app: each user's card on their mailboxes page (address, a
new address, the pattern for forwarded mail, the latest mail it received) and, for
administrators, what the receiver refused (``/settings/dropbox/``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from crmail.dropbox import actions, addresses, patterns, queries
from crmail.people.models import User
from crmail.text_forms import CheckedTextForm
from crmail.web.views.settings import admin_required

REFUSALS_SHOWN = 200


class PatternForm(CheckedTextForm, forms.Form):
    pattern = forms.CharField(
        label="Pattern for forwarded conversations",
        required=False,
        max_length=patterns.MAX_PATTERN,
        help_text="A regular expression that finds the original sender in mail you forward "
        "to your dropbox; name the part that holds the address (?P&lt;address&gt;…). Empty: the "
        "first From: line of the forwarded part.",
    )


def card_context(user: User, pattern_form: PatternForm | None = None) -> dict[str, Any]:
    """What the mailboxes page needs for ``user``'s dropbox card."""
    card = queries.card(user)
    return {
        "dropbox": card,
        "dropbox_own": sorted(addresses.own_addresses(user)) if card.address else [],
        "pattern_form": pattern_form or PatternForm(initial={"pattern": card.pattern}),
    }


def _to_card() -> HttpResponse:
    return redirect(reverse("web:mailboxes") + "#dropbox")


@login_required
@require_POST
def dropbox_regenerate(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if not addresses.domain():
        messages.error(request, "The BCC Dropbox is not set up on this server.")
        return _to_card()
    old = addresses.full(addresses.current(user))
    new = addresses.full(actions.regenerate(user))
    messages.success(
        request, f"Your dropbox address is now {new}. Mail to {old} is refused from now on."
    )
    return _to_card()


@login_required
@require_POST
def dropbox_pattern(request: HttpRequest) -> HttpResponse:
    from crmail.web.views.mailboxes import mailbox_list

    user: User = request.user  # type: ignore[assignment]
    form = PatternForm(request.POST)
    if form.is_valid():
        try:
            saved = actions.set_pattern(user, form.cleaned_data["pattern"])
        except patterns.BadPattern as exc:
            form.add_error("pattern", str(exc))
        else:
            messages.success(
                request,
                "Forwarded mail is now searched with your pattern."
                if saved
                else "Forwarded mail is now searched for its first From: line.",
            )
            return _to_card()
    return mailbox_list(request, pattern_form=form)


@admin_required
def dropbox_refusals(request: HttpRequest) -> HttpResponse:
    rows = list(queries.refusals()[:REFUSALS_SHOWN])
    return render(
        request,
        "web/settings/dropbox.html",
        {"rows": rows, "domain": addresses.domain(), "shown": REFUSALS_SHOWN},
    )
