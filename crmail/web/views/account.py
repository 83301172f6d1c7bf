"""Each user's account page (``/account/``): name and email signature, reading mail (mark
read on opening), password, API tokens.

Every change goes through ``crmail.people.actions``; a new token's secret is shown once,
in the answer to the request that made it: it is never stored, not even in the session.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from crmail.notifications import actions as notification_actions
from crmail.notifications import digest
from crmail.people import actions as people_actions
from crmail.people.backends import client_address
from crmail.people.models import ApiToken, User
from crmail.web.account_forms import (
    AccountForm,
    DigestForm,
    PasswordForm,
    ReadingForm,
    TokenForm,
)


def _page(
    request: HttpRequest,
    *,
    account: AccountForm | None = None,
    password: PasswordForm | None = None,
    token: TokenForm | None = None,
    new_token: dict[str, Any] | None = None,
) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    context: dict[str, Any] = {
        "account_form": account
        or AccountForm(initial={"name": user.name, "signature": user.signature}),
        "reading_form": ReadingForm(initial={"mark_read_on_open": user.mark_read_on_open}),
        "digest_form": DigestForm(
            initial={"daily_digest": notification_actions.wants_digest(user)}
        ),
        "password_form": password or PasswordForm(),
        "token_form": token or TokenForm(),
        "tokens": people_actions.tokens_of(user),
        "new_token": new_token,
    }
    return render(request, "web/account.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """The page; a POST saves the name and signature."""
    if request.method != "POST":
        return _page(request)
    form = AccountForm(request.POST)
    if form.is_valid():
        try:
            people_actions.update_account(
                request.user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                signature=form.cleaned_data["signature"],
            )
        except people_actions.Invalid as exc:
            form.add_action_errors(exc)
        else:
            messages.success(request, "Your name and signature were saved.")
            return redirect("web:account")
    return _page(request, account=form)


@login_required
@require_POST
def account_reading(request: HttpRequest) -> HttpResponse:
    """Saves whether opening a message in crmail marks it read on the server."""
    form = ReadingForm(request.POST)
    if form.is_valid():
        user = people_actions.set_mark_read_on_open(
            request.user,  # type: ignore[arg-type]
            form.cleaned_data["mark_read_on_open"],
        )
        messages.success(
            request,
            "Opening a message now marks it read."
            if user.mark_read_on_open
            else "Opening a message now leaves it unread.",
        )
    return redirect("web:account")


@login_required
@require_POST
def account_digest(request: HttpRequest) -> HttpResponse:
    """Saves whether the user gets the daily digest of unread customer mail."""
    form = DigestForm(request.POST)
    if form.is_valid():
        on = form.cleaned_data["daily_digest"]
        notification_actions.set_daily_digest(request.user, on)  # type: ignore[arg-type]
        messages.success(
            request,
            f"You will get a daily mail of unread customer mail at {digest.digest_hour()}:00."
            if on
            else "You will get no daily mail of unread customer mail.",
        )
    return redirect("web:account")


@login_required
@require_POST
def account_password(request: HttpRequest) -> HttpResponse:
    form = PasswordForm(request.POST)
    if form.is_valid():
        try:
            user = people_actions.change_password(
                request.user,  # type: ignore[arg-type]
                current=form.cleaned_data["current"],
                new=form.cleaned_data["new"],
                again=form.cleaned_data["again"],
                client=client_address(request),
            )
        except people_actions.Invalid as exc:
            form.add_action_errors(exc)
        else:
            update_session_auth_hash(request, user)  # this session stays signed in
            messages.success(
                request, "Your password was changed. Other browsers must sign in again."
            )
            return redirect("web:account")
    return _page(request, password=form)


@login_required
@require_POST
def account_token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            row, secret = people_actions.create_token(
                request.user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                by=request.user,  # type: ignore[arg-type]
            )
        except people_actions.Invalid as exc:
            form.add_action_errors(exc)
        else:
            messages.success(request, "Your new API token was made.")
            new = {"id": row.pk, "name": row.name, "secret": secret}
            response = _page(request, new_token=new)
            response.headers["Cache-Control"] = "no-store"
            return response
    return _page(request, token=form)


@login_required
@require_POST
def account_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if people_actions.revoke_token(token, by=request.user):  # type: ignore[arg-type]
        label = f"“{token.name}”" if token.name else f"{token.hint}…"
        messages.success(request, f"The API token {label} is revoked: it no longer works.")
    else:
        messages.info(request, "That API token was already revoked.")
    return redirect("web:account")
