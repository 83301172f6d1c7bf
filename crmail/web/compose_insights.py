"""The composer's part of Email insights (SPEC F9, decision 057).

- It says when tracking is on (or on without a public address: the mail goes out
  untracked) and offers "Don't track this message".
- It remembers the template "Use template" filled the message from, so the template's
  rates count the message.
- "Send later" (a time typed in crmail's time zone) and "Send at the best time" (the next
  start of the best hour of the contact written to: the record's contact, else the first
  To address that is a contact the writer may see) keep the message in crmail
  (``insights.scheduling``) instead of sending it; a message with no contact, or a
  contact with no known best time, is not scheduled, and the page says why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from crmail.config.dates import when
from crmail.crm.models import Record
from crmail.emailtemplates import actions as template_actions
from crmail.insights import queries, scheduling, switch
from crmail.insights.models import ScheduledSend
from crmail.insights.tracking import Tracker
from crmail.mail.compose import Draft
from crmail.mail.models import Message
from crmail.mailboxes.models import Mailbox
from crmail.people.models import User
from crmail.text_forms import CheckedTextForm

FIELDS = ("no_track", "send_at", "template_id")
LATER, BEST = "send_later", "send_best"


class InsightFields(CheckedTextForm, forms.Form):
    """Fields the composer's form takes on (moved after its own by ``arrange``)."""

    no_track = forms.BooleanField(label="Don't track this message", required=False)
    send_at = forms.DateTimeField(
        label="Send later at",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    template_id = forms.IntegerField(
        required=False, min_value=1, max_value=2**53, widget=forms.HiddenInput
    )


def arrange(form: forms.Form, state: switch.State) -> None:
    """The insight fields after the composer's own; "Don't track" only while tracking is on."""
    for name in FIELDS:
        form.fields[name] = form.fields.pop(name)
    if not state.tracking:
        del form.fields["no_track"]
    form.fields["send_at"].help_text = (
        f"In crmail's time zone ({settings.TIME_ZONE}); then press Send later. The email waits "
        "in crmail (Scheduled, in the top bar) and can be cancelled until it is sent."
    )


def chosen_template(user: User, form: forms.Form) -> int | None:
    """The template the message was filled from, when the writer may use it (else an error
    on the form and None)."""
    pk = form.cleaned_data.get("template_id")
    if pk is None:
        return None
    if not template_actions.readable(user).filter(pk=pk).exists():
        form.add_error(None, "The template this email was filled from is not one you may use.")
        return None
    return int(pk)


def tracker(user: User, form: forms.Form, template_id: int | None) -> Tracker:
    """What sending now hands ``send_message``."""
    track = switch.state().tracking and not form.cleaned_data.get("no_track", False)
    return Tracker(track=track, template_id=template_id)


def wants_later(request: HttpRequest) -> bool:
    return LATER in request.POST or BEST in request.POST


def best_time_hint(user: User, record: Record | None) -> str:
    """What the composer says of the best time, for a record's contact; "" otherwise."""
    contact = queries.contact_for(user, record, [])
    if contact is None:
        return ""
    heat = queries.heatmap(user, contact)
    if heat.best is None:
        return f"Best time for {contact}: {heat.best_words}"
    at = queries.next_slot(heat.best, heat.zone, timezone.now())
    return f"Best time for {contact}: {heat.best_words}. Next: {when(at)}."


def schedule(
    request: HttpRequest,
    form: forms.Form,
    user: User,
    draft: Draft,
    *,
    template_id: int | None,
    mailbox: Mailbox | None,
    record: Record | None,
    module: str,
    answers: Message | None,
) -> ScheduledSend | None:
    """Keep the message to send later; None with the reason on the form when it cannot be.
    ``ComposeError`` for a header sending would refuse (the caller shows it)."""
    now = timezone.now()
    best_of = ""
    send_at: datetime | None
    if BEST in request.POST:
        contact = queries.contact_for(user, record, list(draft.to))
        if contact is None:
            form.add_error(
                None,
                "Send at the best time needs a contact to write to: none of the To addresses "
                "is a contact you may see.",
            )
            return None
        heat = queries.heatmap(user, contact)
        if heat.best is None:
            form.add_error(None, f"{contact}: {heat.best_words}")
            return None
        send_at, best_of = queries.next_slot(heat.best, heat.zone, now), str(contact)
    else:
        send_at = form.cleaned_data.get("send_at")
        if send_at is None:
            form.add_error("send_at", "Choose when to send it, then press Send later.")
            return None
    try:
        return scheduling.schedule(
            user,
            draft,
            send_at=send_at,
            mailbox=mailbox,
            record_module=module,
            record_id=record.pk if record is not None else None,
            answers=answers,
            track=not form.cleaned_data.get("no_track", False),
            template_id=template_id,
            best_time_of=best_of,
            now=now,
        )
    except scheduling.ScheduleError as exc:
        form.add_error("send_at", str(exc))
        return None


def context(user: User, record: Record | None, state: switch.State) -> dict[str, Any]:
    return {
        "tracking_state": state,
        "best_time_hint": best_time_hint(user, record),
    }
