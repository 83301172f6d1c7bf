"""Writing an email (SPEC F3): from a Lead, Contact, Account or Deal, or on its own.

The page shapes what was typed into a ``Draft``; ``crmail.mailboxes.sending.send_message``
checks it (headers without line breaks, valid addresses, a From address the mailbox sends
as), sends it through the user's active mailbox and stores it. Its refusals are shown in
words next to the field they concern. Sent from a record, the mail is recorded against it;
a record the user may not see answers 404.

Reply, reply all and forward (``?message=ID&mode=reply|all|forward``) start from a message
the user may see (``sharing.visibility``; 404 otherwise): ``mailboxes.replies`` gives the
recipients, subject, quoted text and the mailbox that received it; the threading headers
and a forward's attachments are taken from the stored original when sending, never from
the form. Files attached here are streamed to disk as they upload (settings
``FILE_UPLOAD_*``) and weighed against the mailbox's limit.

"Use template" fills the subject and message from a template, merged for the record and
the user (``crmail.emailtemplates.merge``), keeping what was typed in the other fields; the
user reads it, may change it, and sends.

Rich text: with JavaScript, crmail's editor (``static/crmail/editor.js``) turns the message
box into a formatting editor that starts from ``data-rich-start`` (the signature and the
quote as HTML) and, on Send, puts its HTML in ``body_html`` and its text alternative in
``body``; ``mail.compose`` cleans the HTML and sends both as multipart/alternative.
Without JavaScript ``body_html`` stays empty and the message is plain text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import NoReverseMatch, reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from crmail.crm.models import Account, Contact, Deal, Record
from crmail.domains import queries as domain_queries
from crmail.emailtemplates import merge
from crmail.insights import scheduling, switch
from crmail.linking.links import link_answer
from crmail.linking.signatures import company_from_domain
from crmail.mail.compose import ComposeError, Draft, text_html
from crmail.mail.models import Message
from crmail.mail.store import body_waits
from crmail.mailboxes import replies
from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.org_addresses import OrgSender, organisation_senders
from crmail.mailboxes.providers import PRESETS, preset
from crmail.mailboxes.sending import (
    DEFAULT_MESSAGE_LIMIT,
    SendingNotPossible,
    from_addresses,
    message_limit,
    send_message,
    sender_name,
)
from crmail.people import access
from crmail.people.models import User
from crmail.sharing.visibility import may_see_message
from crmail.web import compose_insights
from crmail.web.modules import MODULES
from crmail.web.template_forms import TemplatePickForm

# What compose.py calls a field, as this form names it (None: the message as a whole).
FORM_FIELDS = {
    "from": "sender",
    "reply_to": "reply_to",
    "to": "to",
    "cc": "cc",
    "bcc": "bcc",
    "subject": "subject",
}
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


def upload_cap() -> int:
    """The most any mailbox takes in a message: what an upload may reach on disk."""
    return max([DEFAULT_MESSAGE_LIMIT, *(p.max_message_bytes or 0 for p in PRESETS.values())])


class CappedUploadHandler(TemporaryFileUploadHandler):
    """Files to disk as they arrive; past ``cap`` bytes in all, the rest is not kept
    (``request.upload_over`` says so, and the form says it in words)."""

    def __init__(self, request: HttpRequest, cap: int) -> None:
        super().__init__(request)
        self.cap, self.received = cap, 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.cap:
            self.request.upload_over = self.received  # type: ignore[union-attr]
            self.file.close()  # a temporary file: closing removes it
            raise SkipFile
        return super().receive_data_chunk(raw_data, start)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class FilesField(forms.FileField):
    """Any number of uploaded files (a list, maybe empty)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        items = data if isinstance(data, list | tuple) else [data]
        return [super(FilesField, self).clean(item, initial) for item in items if item]


class ComposeForm(compose_insights.InsightFields):  # CheckedTextForm through it
    sender = forms.ChoiceField(label="From")
    reply_to = forms.ChoiceField(
        label="Reply-To",
        required=False,
        help_text="Where replies go; empty: to the From address.",
    )
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
        widget=forms.Textarea(attrs={"rows": 14, "data-editor": "rich"}),
    )
    # Filled by the editor on Send; the server cleans it (mail.compose.safe_html).
    body_html = forms.CharField(
        required=False, strip=False, max_length=2_000_000, widget=forms.HiddenInput
    )
    files = FilesField(label="Attach files", required=False)

    def __init__(
        self,
        *args: Any,
        senders: list[tuple[str, str]],
        limit: int,
        limit_owner: str,
        carried: int = 0,
        over: int = 0,
        rich_start: str = "",
        organisation: Sequence[OrgSender] = (),
        tracking: switch.State | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        compose_insights.arrange(self, tracking or switch.state())
        if rich_start:  # what the editor starts from; never sent as it is
            self.fields["body"].widget.attrs["data-rich-start"] = rich_start
        self.over = over  # bytes of files not kept: past the upload cap
        self.fields["sender"].choices = senders
        self.offer_organisation(senders, organisation)
        self.limit, self.limit_owner, self.carried = limit, limit_owner, carried
        self.fields[
            "files"
        ].help_text = (
            f"Up to {filesizeformat(limit)} in all{' with the forwarded files' if carried else ''}."
        )

    def offer_organisation(
        self, senders: list[tuple[str, str]], organisation: Sequence[OrgSender]
    ) -> None:
        """The organisation addresses the user may send as (SPEC F16): a group of From
        choices after the mailbox's, and the Reply-To choices; without any, no Reply-To."""
        if not organisation:
            del self.fields["reply_to"]
            return
        mine = [(o.address, o.label) for o in organisation]
        self.fields["sender"].choices = [
            ("Your mailbox", senders),
            ("Organisation addresses", mine),
        ]
        self.fields["reply_to"].choices = [("", "(the From address)"), *senders, *mine]

    def clean_files(self) -> list[Any]:
        files = self.cleaned_data["files"]
        total = self.carried + sum(f.size for f in files) + self.over
        if total > self.limit:
            raise forms.ValidationError(
                f"The attachments come to {'more than ' if self.over else ''}"
                f"{filesizeformat(total)}; {self.limit_owner} takes "
                f"at most {filesizeformat(self.limit)} a message. Leave some out, or share "
                "large files by a link."
            )
        return files

    def draft(self, start: replies.Start | None = None) -> Draft:
        data = self.cleaned_data
        files = [
            (f.name, f.content_type or "application/octet-stream", f.read()) for f in data["files"]
        ]
        if start is not None and start.attachments:
            files = replies.forwarded_files(start.original, start.attachments) + files
        return Draft(
            sender=data["sender"],
            reply_to=data.get("reply_to", ""),
            to=split(data["to"]),
            cc=split(data["cc"]),
            bcc=split(data["bcc"]),
            subject=data["subject"],
            text=data["body"],
            html=data["body_html"],
            in_reply_to=start.in_reply_to if start else "",
            references=start.references if start else (),
            attachments=files,
        )


def unsigned_warnings(senders: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(address, why) for each From choice whose mail goes out without crmail's DKIM
    signature (SPEC F10): its domain is not authenticated, once the organisation has added
    a domain. Free mail services' addresses are left out: no one can authenticate them,
    and their providers sign that mail themselves."""
    warnings = []
    for address, _ in senders:
        if company_from_domain(address.rpartition("@")[2]):
            reason = domain_queries.unsigned_reason(address)
            if reason:
                warnings.append((address, reason))
    return warnings


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
    request: HttpRequest, user: User, record: Record | None, options: dict[str, Any]
) -> tuple[ComposeForm, TemplatePickForm]:
    """The composer shown again with the chosen template's subject and message filled for
    ``record``; what was typed in the other fields stays. A template that cannot be filled
    (a field whose record is missing) leaves the message as it was and says why."""
    pick = TemplatePickForm(request.POST, user=user)
    typed = ComposeForm(request.POST, **options)
    typed.is_valid()  # only to keep what is valid of what was typed
    fields = ("reply_to", "to", "cc", "bcc", "subject", "body", "body_html", "no_track", "send_at")
    initial = {k: typed.cleaned_data.get(k, "") for k in fields}
    initial["sender"] = typed.cleaned_data.get("sender") or options["senders"][0][0]
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
                # A template is plain text: the editor starts again from it, in either mode.
                initial["body"], initial["body_html"] = done.body, ""
                initial["template_id"] = chosen.pk  # its rates count this email (SPEC F9)
                if done.subject:  # a template without a subject keeps the one typed
                    initial["subject"] = done.subject
    return ComposeForm(initial=initial, **options), pick


def answer_start(request: HttpRequest) -> replies.Start | None:
    """The reply or forward asked for (``?message=ID&mode=…``), from a message the user
    may see; None for a new message; 404 for a message they may not see."""
    raw_id, mode = request.GET.get("message", ""), request.GET.get("mode", "reply")
    if not raw_id:
        return None
    if not raw_id.isdigit() or len(raw_id) > 18 or mode not in replies.MODES:
        raise Http404("No such message.")
    message = get_object_or_404(Message.objects.defer("body_text"), pk=int(raw_id))
    if not may_see_message(request.user, message):  # type: ignore[arg-type]
        raise Http404("No such message.")
    return replies.start(request.user, message, mode)  # type: ignore[arg-type]


def limit_owner(mailbox: Mailbox | None) -> str:
    """Who sets the size limit, in words."""
    if mailbox is not None and preset(mailbox.provider).max_message_bytes:
        return preset(mailbox.provider).name
    return "crmail"


TITLES = {"reply": "Reply", "all": "Reply all", "forward": "Forward"}


def untracked_warning(
    request: HttpRequest, organisation: Sequence[OrgSender], sent_as: str
) -> None:
    """After sending as an organisation address whose replies crmail does not see, say so."""
    for o in organisation:
        if o.address == sent_as and not o.tracking.tracked:
            messages.warning(request, f"Sent as {o.address}. {o.tracking.words}")


@login_required
@require_http_methods(["GET", "POST"])
@csrf_exempt  # checked below, once the upload handler is in place (Django's upload docs)
def compose(request: HttpRequest, module: str | None = None, pk: int | None = None) -> HttpResponse:
    request.upload_handlers = [CappedUploadHandler(request, upload_cap())]
    return _compose(request, module, pk)


@csrf_protect
def _compose(request: HttpRequest, module: str | None, pk: int | None) -> HttpResponse:
    user = request.user
    mod = MODULES[module] if module else None
    record: Record | None = None
    if mod is not None:
        record = get_object_or_404(access.visible(user, mod.model), pk=pk)
    try:
        start = answer_start(request)
    except replies.NotReadable as exc:
        messages.error(request, str(exc))
        return redirect(reverse("web:message", args=[request.GET["message"]]))
    if start is not None and request.method == "GET" and body_waits(start.original):
        messages.warning(
            request,
            "The body of this message still waits on the mail server (crmail's storage was "
            "full when it arrived): below is only what crmail kept. To quote it or pass its "
            "attachments on, fetch the whole message from its page first.",
        )
    mailbox = (
        start.mailbox
        if start is not None
        else Mailbox.objects.filter(owner=user, is_active=True).first()
    )
    problem = why_not(mailbox)
    name = sender_name(mailbox, user) if mailbox is not None else ""
    senders = (
        [(a, f"{name} <{a}>" if name else a) for a in from_addresses(mailbox)]
        if mailbox is not None
        else []
    )
    if record is not None:
        back = reverse("web:record_detail", args=[module, record.pk])
    elif start is not None:
        back = reverse("web:message", args=[start.original.pk])
    else:
        back = reverse("web:home")
    carried = sum(a.size for a in start.attachments) if start is not None else 0
    organisation = organisation_senders(user, mailbox) if not problem else []
    tracking = switch.state()
    options = {
        "senders": senders,
        "organisation": organisation,
        "tracking": tracking,
        "limit": message_limit(mailbox) if mailbox is not None else 0,
        "limit_owner": limit_owner(mailbox),
        "carried": carried,
    }
    form: ComposeForm | None = None
    pick = TemplatePickForm(user=user)
    if request.method == "POST" and not problem and "use_template" in request.POST:
        form, pick = with_template(request, user, record, options)
    elif request.method == "POST" and not problem:
        form = ComposeForm(
            request.POST, request.FILES, over=getattr(request, "upload_over", 0), **options
        )
        template_id = compose_insights.chosen_template(user, form) if form.is_valid() else None
        if form.is_valid() and compose_insights.wants_later(request):
            try:
                later = compose_insights.schedule(
                    request,
                    form,
                    user,
                    form.draft(start),
                    template_id=template_id,
                    mailbox=mailbox,
                    record=record,
                    module=module or "",
                    answers=start.original if start is not None else None,
                )
            except ComposeError as exc:
                form.add_error(FORM_FIELDS.get(exc.field), str(exc))
            else:
                if later is not None:
                    messages.success(request, scheduling.scheduled_words(later))
                    return redirect(back)
        elif form.is_valid():
            try:
                sent = send_message(
                    user,
                    form.draft(start),
                    mailbox=mailbox,
                    record_module=module or "",
                    record_id=pk,
                    tracking=compose_insights.tracker(user, form, template_id),
                )
            except ComposeError as exc:
                form.add_error(FORM_FIELDS.get(exc.field), str(exc))
            except SendingNotPossible as exc:
                problem = str(exc)
            except DriverError as exc:
                form.add_error(None, f"The outgoing server did not take the message: {exc}")
            else:
                if start is not None:
                    link_answer(sent.message, start.original, user)
                subject = form.cleaned_data["subject"] or "(no subject)"
                messages.success(request, f"Your email “{subject}” was sent.")
                if sent.sent_copy_error:
                    messages.warning(request, sent.sent_copy_error)
                untracked_warning(request, organisation, sent.from_address)
                return redirect(back)
    elif not problem and start is not None:
        initial = {
            "to": ", ".join(start.to),
            "cc": ", ".join(start.cc),
            "subject": start.subject,
            "sender": start.sender,
            "body": (with_signature(user) or "\n\n") + "\n" + start.text,
        }
        rich = text_html((with_signature(user) or "\n\n") + "\n") + start.html
        form = ComposeForm(initial=initial, rich_start=rich, **options)
    elif not problem:
        to = recipient_for(user, record) if record is not None else request.GET.get("to", "")
        initial = {
            "to": to[:1000],
            "sender": senders[0][0],  # the mailbox's own address
            "body": with_signature(user),
        }
        form = ComposeForm(initial=initial, rich_start=text_html(with_signature(user)), **options)
    title = TITLES[start.mode] if start is not None else ""
    context = {
        "mod": mod,
        "module": module,
        "record": record,
        "form": form,
        "pick": pick,
        "problem": problem,
        "settings_url": mail_settings_url(),
        "back": back,
        "start": start,
        "title": title,
        "carried": start.attachments if start is not None else [],
        "organisation": organisation,
        "sender_warnings": (
            unsigned_warnings(senders + [(o.address, o.label) for o in organisation])
            if form is not None
            else []
        ),
    }
    context |= compose_insights.context(user, record, tracking)
    return render(request, "web/compose.html", context)
