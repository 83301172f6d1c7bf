"""An unknown sender made a Lead or Contact from the message page, in one step (SPEC F14).

``/messages/<pk>/sender/<leads|contacts>/`` shows the module's record form filled in from
the message (``linking.senders``): the name and address of the person at the other end
(the From of mail received, the first To of mail the user sent), and from the signature
the title, phone and company. For a Contact, the account: one the user may see with the
company's name is chosen; otherwise a "New account" field holds the name, and saving makes
that account too (when the user may create accounts). Saving writes through
``crm.actions``; the new record's past mail is linked in the same request (a large
amount by a background job whose progress the record's page shows), so the message and
every other one with that address are on the record when its page opens.

A message the user may not see answers 404 (``sharing.visibility``), a module other than
leads and contacts 404, a module the user may not create 403. A sender who is already a
Lead or Contact the user may see (made meanwhile) is said so, with a link to the record.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from crmail.config.words import count
from crmail.crm import actions
from crmail.crm.forms import FORMS, RecordForm
from crmail.crm.models import Account
from crmail.linking import senders
from crmail.linking.links import link_progress
from crmail.linking.models import JobState
from crmail.mailboxes.replies import own_addresses
from crmail.people import access
from crmail.people.models import User
from crmail.sharing.visibility import visible_messages
from crmail.web.modules import MODULES
from crmail.web.views.messages import _message_for


def _with_account_help(form: RecordForm, new_account: bool, match: Account | None) -> RecordForm:
    """The record form with, for a Contact, a "New account" field under Account (when the
    user may create accounts) and why the account chosen was chosen."""
    if match is not None:
        form.fields[
            "account"
        ].help_text = f"{match} is chosen because its name matches the company in the message."
    if new_account:
        form.fields["new_account"] = forms.CharField(
            required=False,
            max_length=200,
            label="New account",
            help_text=(
                "Used when no account is chosen above: crmail creates an account with this "
                "name for the contact. Leave it empty for a contact without an account."
            ),
        )
        names = [name for name in form.fields if name != "new_account"]
        names.insert(names.index("account") + 1, "new_account")
        form.order_fields(names)
    return form


def _made_message(user: User, module: str, record: Any, address: str) -> str:
    """What the next page says: the record made, and its mail (as far as the user sees)."""
    singular = MODULES[module].singular
    job = link_progress(module, record.pk)
    if job is not None and job.state in (JobState.QUEUED, JobState.RUNNING):
        return (
            f"The {singular} {record} was created. crmail is linking the past mail of "
            f"{address} to it in the background; this page shows how far it has got."
        )
    shown = visible_messages(user, module, record.pk).count()
    return (
        f"The {singular} {record} was created, with {count(shown, 'message')} "
        f"you can see from and to {address}."
    )


def _known_page(request: HttpRequest, context: dict[str, Any], known: list[Any]) -> HttpResponse:
    """The sender is a Lead or Contact the user may see already: where to find them."""
    rows = [{"record": r, "module": r.MODULE, "kind": MODULES[r.MODULE].singular} for r in known]
    return render(request, "web/messages/sender.html", context | {"known": rows})


@login_required
@require_http_methods(["GET", "POST"])
def message_sender_create(request: HttpRequest, pk: int, module: str) -> HttpResponse:
    if module not in senders.MODULES:
        raise Http404("Only a lead or a contact is made from a sender.")
    user: User = request.user  # type: ignore[assignment]
    message = _message_for(request, pk)
    mod = MODULES[module]
    if not access.can_create(user, mod.model):
        raise PermissionDenied(f"Your profile does not allow creating {mod.plural}.")
    parsed = senders.read(message)
    if parsed is None:
        raise Http404("crmail could not read this message, so it cannot name its sender.")
    own = own_addresses(user)
    sender = senders.correspondent(parsed, own)
    if sender is None:
        raise Http404("This message names nobody but you.")
    context: dict[str, Any] = {"mod": mod, "module": module, "message": message, "sender": sender}
    known = senders.known_records(user, sender.address)
    if known:
        return _known_page(request, context, known)

    values = senders.prefill(parsed, module, own)
    suggested = values.pop("account_name", "")
    match = senders.matching_account(user, suggested) if module == "contacts" else None
    new_account = module == "contacts" and access.can_create(user, Account)
    if request.method == "POST":
        data = request.POST.dict()
        form = _with_account_help(actions.bind_form(user, module, data), new_account, match)
        if form.is_valid():
            try:
                record = senders.create_from_sender(
                    user, sender, module, data, form.cleaned_data.get("new_account", "")
                )
            except senders.AlreadyKnown as exc:
                return _known_page(request, context, [exc.record])
            except actions.NotAllowed as exc:
                raise PermissionDenied(str(exc)) from None
            except actions.RecordInvalid as exc:  # the new account's name, or a race
                for error in exc.errors:
                    field = "new_account" if error["field"] == "account_name" else error["field"]
                    form.add_error(field if field in form.fields else None, error["message"])
            else:
                messages.success(request, _made_message(user, module, record, sender.address))
                return redirect("web:record_detail", module=module, pk=record.pk)
    else:
        initial = {**values, "owner": user.pk, "new_account": "" if match else suggested}
        if match is not None:
            initial["account"] = match.pk
        form = _with_account_help(FORMS[module](user=user, initial=initial), new_account, match)
    context["form"] = form
    return render(request, "web/messages/sender.html", context)
