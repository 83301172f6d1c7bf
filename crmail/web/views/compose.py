"""Writing an email (SPEC F3): from a Lead, Contact, Account or Deal, or on its own.

The page shapes what was typed into a ``Draft``; ``crmail.mailboxes.sending.send_message``
checks it (headers without line breaks, valid addresses, a From address the mailbox sends
as), sends it through the user's active mailbox and stores it. Its refusals are shown in
words next to the field they concern. Sent from a record, the mail is recorded against it;
a record the user may not see answers 404. "Use template" fills the subject and message
from a template, merged for the record and the user (``crmail.emailtemplates.merge``),
keeping what was typed in the other fields; the user reads it, may change it, and sends.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods

from crmail.crm.models import Account, Contact, Deal, Record
from crmail.emailtemplates import merge
from crmail.mail.compose import ComposeError, Draft
from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.sending import SendingNotPossible, from_addresses, send_message
from crmail.people import access
from crmail.people.models import User
from crmail.text import CheckedTextForm
from crmail.web.modules import MODULES
from crmail.web.template_forms import TemplatePickForm

# What compose.py calls a field, as this form names it (None: the message as a whole).
FORM_FIELDS = {"from": "sender", "to": "to", "cc": "cc", "bcc": "bcc", "subject": "subject"}
MAIL_SETTINGS_FALLBACK = "/settings/mail/"


def mail_settings_url() -> str:
    """Where a user connects a mailbox (the mailbox settings page, once it exists)."""
    try:
        return reverse("web:mailboxes")
    except NoReverseMatch:
        return MAIL_SETTINGS_FALLBACK


def split(raw: str) -> list[str]:
    """Addresses separated by commas or semicolons (line breaks are left for the checks)."""
    return [item.strip(" \t") for item in raw.replace(";", ",").split(",") if item.strip()]


class ComposeForm(CheckedTextForm, forms.Form):
    sender = forms.ChoiceField(label="From")
    to = forms.CharField(
        label="To", max_length=10_000, help_text="Email addresses, separated by commas."
    )
    cc = forms.CharField(label="Cc", required=False, max_length=10_000)
    bcc = forms.CharField(
        label="Bcc",
        required=False,
        max_length=10_000,
        help_text="They receive the message without the others seeing their address.",
    )
    subject = forms.CharField(label="Subject", required=False, max_length=998)
    body = forms.CharField(
        label="Message",
        required=False,
        strip=False,
        max_length=1_000_000,
        widget=forms.Textarea(attrs={"rows": 14}),
    )

    def __init__(self, *args: Any, senders: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sender"].choices = senders

    def draft(self, user: User) -> Draft:
        data = self.cleaned_data
        return Draft(
            sender=data["sender"],
            sender_name=user.name,
            to=split(data["to"]),
            cc=split(data["cc"]),
            bcc=split(data["bcc"]),
            subject=data["subject"],
            text=data["body"],
        )


def with_signature(user: User) -> str:
    """A new message's starting text: the user's signature under the usual "-- " line
    (set on the Account page), after room to write; empty without a signature."""
    if not user.signature:
        return ""
    return f"\n\n-- \n{user.signature}\n"


def why_not(mailbox: Mailbox | None) -> str:
    """Why nothing can be sent now, in words; empty when sending is possible."""
    if mailbox is None:
        return (
            "You have no active mailbox, so crmail has nothing to send with. "
            "Connect your mailbox (or activate one) in your mail settings."
        )
    if not mailbox.smtp_host:
        return (
            f"Your mailbox {mailbox.email} has no outgoing (SMTP) server. "
            "Add one in your mail settings to send mail from crmail."
        )
    return ""


def recipient_for(user: User, record: Record) -> str:
    """The address to write to: the person's own, or a deal's or account's contact's."""
    if isinstance(record, Account | Deal):
        contacts = access.visible(user, Contact).prefetch_related("emails")
        if isinstance(record, Deal):
            found = contacts.filter(pk=record.contact_id).first() if record.contact_id else None
            if found is not None and found.primary_email:
                return found.primary_email
            if record.account_id is None:
                return ""
            contacts = contacts.filter(account_id=record.account_id)
        else:
            contacts = contacts.filter(account=record)
        contacts = contacts.filter(emails__is_primary=True).distinct()
        first = contacts.order_by("last_name", "first_name", "pk").first()
        return first.primary_email if first else ""
    return getattr(record, "primary_email", "")


def with_template(
    request: HttpRequest, user: User, record: Record | None, senders: list[tuple[str, str]]
) -> tuple[ComposeForm, TemplatePickForm]:
    """The composer shown again with the chosen template's subject and message filled for
    ``record``; what was typed in the other fields stays. A template that cannot be filled
    (a field whose record is missing) leaves the message as it was and says why."""
    pick = TemplatePickForm(request.POST, user=user)
    typed = ComposeForm(request.POST, senders=senders)
    typed.is_valid()  # only to keep what is valid of what was typed
    initial = {k: typed.cleaned_data.get(k, "") for k in ("to", "cc", "bcc", "subject", "body")}
    initial["sender"] = typed.cleaned_data.get("sender") or senders[0][0]
    if pick.is_valid():
        chosen = pick.cleaned_data["template"]
        if chosen is None:
            pick.add_error("template", "Choose a template to use.")
        else:
            try:
                done = merge.render_template(
                    chosen.subject, chosen.body, merge.records_for(user, record)
                )
            except merge.MergeError as exc:
                pick.add_error("template", str(exc))
            else:
                initial["body"] = done.body
                if done.subject:  # a template without a subject keeps the one typed
                    initial["subject"] = done.subject
    return ComposeForm(initial=initial, senders=senders), pick


@login_required
@require_http_methods(["GET", "POST"])
def compose(request: HttpRequest, module: str | None = None, pk: int | None = None) -> HttpResponse:
    user = request.user
    mod = MODULES[module] if module else None
    record: Record | None = None
    if mod is not None:
        record = get_object_or_404(access.visible(user, mod.model), pk=pk)
    mailbox = Mailbox.objects.filter(owner=user, is_active=True).first()
    problem = why_not(mailbox)
    senders = (
        [(a, f"{user.name} <{a}>" if user.name else a) for a in from_addresses(mailbox)]
        if mailbox is not None
        else []
    )
    back = (
        reverse("web:record_detail", args=[module, record.pk])
        if record is not None
        else reverse("web:home")
    )
    form: ComposeForm | None = None
    pick = TemplatePickForm(user=user)
    if request.method == "POST" and not problem and "use_template" in request.POST:
        form, pick = with_template(request, user, record, senders)
    elif request.method == "POST" and not problem:
        form = ComposeForm(request.POST, senders=senders)
        if form.is_valid():
            try:
                sent = send_message(
                    user, form.draft(user), record_module=module or "", record_id=pk
                )
            except ComposeError as exc:
                form.add_error(FORM_FIELDS.get(exc.field), str(exc))
            except SendingNotPossible as exc:
                problem = str(exc)
            except DriverError as exc:
                form.add_error(None, f"The outgoing server did not take the message: {exc}")
            else:
                subject = form.cleaned_data["subject"] or "(no subject)"
                messages.success(request, f"Your email “{subject}” was sent.")
                if sent.sent_copy_error:
                    messages.warning(request, sent.sent_copy_error)
                return redirect(back)
    elif not problem:
        to = recipient_for(user, record) if record is not None else request.GET.get("to", "")
        initial = {
            "to": to[:1000],
            "sender": senders[0][0],  # the mailbox's own address
            "body": with_signature(user),
        }
        form = ComposeForm(initial=initial, senders=senders)
    context = {
        "mod": mod,
        "module": module,
        "record": record,
        "form": form,
        "pick": pick,
        "problem": problem,
        "settings_url": mail_settings_url(),
        "back": back,
    }
    return render(request, "web/compose.html", context)
