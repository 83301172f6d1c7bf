"""Email insights (SPEC F9, decision 057) in the API.

- ``GET /insights/settings``: whether mail sent from crmail is tracked, and why not in
  words; ``PUT`` turns it on or off (administrators).
- ``GET /messages/{id}/insights``: a message's opens and clicks, each with its time,
  client kind and whether it was probably a scanner (404 for a message you may not see:
  who sees a message sees its opens and clicks).
- ``GET /insights/templates``: sent / opened / clicked / replied of each template you may
  use, over the mail written from it that you may see.
- ``GET /contacts/{id}/best-time``: the contact's hour-of-week profile and best time.
- ``/scheduled``: your messages to send later: list, schedule (the body of
  ``/messages/send`` with ``send_at``, or ``best_time``), read, cancel.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from crmail.api import records
from crmail.api.auth import admin_user, current_user
from crmail.api.errors import Invalid
from crmail.api.messages import FIELDS, _visible_record, draft_of
from crmail.api.schemas import (
    READ_ERRORS,
    Id,
    Input,
    ListParams,
    Moment,
    Page,
    SendIn,
    errors_doc,
)
from crmail.crm.models import Contact
from crmail.emailtemplates import actions as template_actions
from crmail.insights import queries, scheduling, switch
from crmail.insights.models import ClientKind, ScheduledSend, ScheduledState
from crmail.mail.compose import ComposeError
from crmail.people import access
from crmail.sharing.visibility import may_see_message

router = Router(tags=["Email insights"])
message_router = Router(tags=["Messages"])
contact_router = Router(tags=["Contacts"])
scheduled_router = Router(tags=["Scheduled messages"])

WRITE = errors_doc(400, 401, 403, 422)
SCHEDULE = errors_doc(400, 401, 404, 422)
CANCEL = errors_doc(401, 404, 409, 422)


class SettingsOut(Schema):
    tracking: bool = Field(description="The organisation's switch (off until turned on).")
    public_url: str = Field(description="CRMAIL_PUBLIC_URL; empty: not set.")
    active: bool = Field(description="Mail goes out tracked now: switched on, and an address.")
    words: str = Field(description="What the composer says, in words.")


class SettingsIn(Input):
    tracking: bool


def _settings_out(state: switch.State) -> dict[str, Any]:
    return {
        "tracking": state.switched_on,
        "public_url": state.public_url,
        "active": state.tracking,
        "words": state.words,
    }


@router.get("/settings", response={200: SettingsOut}, openapi_extra=READ_ERRORS)
def read_settings(request: HttpRequest) -> dict[str, Any]:
    """Whether mail sent from crmail is tracked."""
    current_user(request)
    return _settings_out(switch.state())


@router.put("/settings", response={200: SettingsOut}, openapi_extra=WRITE)
def change_settings(request: HttpRequest, payload: SettingsIn) -> dict[str, Any]:
    """Turn tracking on or off (administrators)."""
    user = admin_user(request, "Only administrators turn email tracking on or off.")
    return _settings_out(switch.set_tracking(user, payload.tracking))


class HitOut(Schema):
    at: datetime
    client: ClientKind = Field(description="A coarse kind of mail program.")
    scanner: bool = Field(
        description="Probably a mail-security scanner or privacy proxy, not a person: left "
        "out of the figures."
    )
    scanner_reason: str = Field(description="Why, in words; empty for a person.")


class ClickOut(HitOut):
    link: int = Field(description="The link's place in the message, from 0.")
    url: str


class MessageInsightsOut(Schema):
    message_id: int
    tracked: bool = Field(description="Sent from crmail with the open pixel and tracked links.")
    sent_at: datetime | None
    opens: int = Field(description="Opens by people (scanners left out).")
    clicks: int = Field(description="Clicks by people (scanners left out).")
    opened: list[HitOut] = Field(description="Every open, scanners' included, oldest first.")
    clicked: list[ClickOut] = Field(description="Every click, scanners' included, oldest first.")


def _hit(hit: Any) -> dict[str, Any]:
    return {
        "at": hit.at,
        "client": hit.client,
        "scanner": hit.scanner,
        "scanner_reason": hit.scanner_reason,
    }


@message_router.get(
    "/{id}/insights",
    response={200: MessageInsightsOut},
    openapi_extra=READ_ERRORS,
    summary="A message's opens and clicks",
)
def message_insights(request: HttpRequest, id: Id) -> dict[str, Any]:
    """Opens and clicks of a message you may see (404 otherwise); ``tracked`` false and
    nothing listed for a message that was not sent tracked."""
    if not may_see_message(current_user(request), id):
        raise Http404
    found = queries.for_message(id)
    if found is None:
        return {
            "message_id": id,
            "tracked": False,
            "sent_at": None,
            "opens": 0,
            "clicks": 0,
            "opened": [],
            "clicked": [],
        }
    return {
        "message_id": id,
        "tracked": True,
        "sent_at": found.sent.sent_at,
        "opens": len(found.counted_opens),
        "clicks": len(found.counted_clicks),
        "opened": [_hit(o) for o in found.opens],
        "clicked": [_hit(c) | {"link": c.link, "url": c.url} for c in found.clicks],
    }


class RatesOut(Schema):
    template_id: int
    name: str
    sent: int = Field(description="Emails written from it that you may see.")
    tracked: int = Field(description="Of those, how many went out tracked.")
    opened: int = Field(description="Of the tracked, opened by a person.")
    clicked: int = Field(description="Of the tracked, with a link followed by a person.")
    replied: int = Field(description="Of all sent, answered by a recipient.")
    open_rate: int | None = Field(description="Percent of the tracked; null: none tracked.")
    click_rate: int | None = Field(description="Percent of the tracked; null: none tracked.")
    reply_rate: int | None = Field(description="Percent of those sent; null: none sent.")


@router.get(
    "/templates",
    response={200: Page[RatesOut]},
    openapi_extra=READ_ERRORS,
    summary="Templates' open, click and reply rates",
)
def template_rates(request: HttpRequest, params: Query[ListParams]) -> dict[str, Any]:
    """Each template you may use, by name, with its figures over the mail you may see."""
    user = current_user(request)
    page = records.page(template_actions.readable(user).order_by("name", "pk"), params)
    rates = queries.template_rates(user, [t.pk for t in page["items"]])
    items = []
    for template in page["items"]:
        r = rates.get(template.pk, queries.Rates())
        items.append(
            {
                "template_id": template.pk,
                "name": template.name,
                "sent": r.sent,
                "tracked": r.tracked,
                "opened": r.opened,
                "clicked": r.clicked,
                "replied": r.replied,
                "open_rate": r.open_rate,
                "click_rate": r.click_rate,
                "reply_rate": r.reply_rate,
            }
        )
    page["items"] = items
    return page


class SlotOut(Schema):
    weekday: int = Field(description="0 Monday … 6 Sunday, in ``time_zone``.")
    hour: int = Field(description="0 to 23, in ``time_zone``.")


class BestTimeOut(Schema):
    contact_id: int
    time_zone: str = Field(description="The contact's time zone, else the organisation's.")
    own_time_zone: bool = Field(description="The contact's own time zone is known.")
    opens: int = Field(description="Opens by people of mail sent to them that you may see.")
    replies: int = Field(description="Their replies you may see.")
    best: SlotOut | None = Field(description="The best hour of the week; null: not known yet.")
    words: str
    next_at: datetime | None = Field(description="The next start of the best hour.")
    grid: list[list[int]] = Field(description="Seven rows (Monday first) of 24 counts.")


@contact_router.get(
    "/{id}/best-time",
    response={200: BestTimeOut},
    openapi_extra=READ_ERRORS,
    summary="A contact's best time to be written to",
)
def best_time(request: HttpRequest, id: Id) -> dict[str, Any]:
    """From the contact's opens (not scanners') and replies you may see, by hour of the
    week in their time zone (else the organisation's)."""
    user = current_user(request)
    contact = records.get_or_404(access.visible(user, Contact), id)
    heat = queries.heatmap(user, contact)
    best = heat.best
    return {
        "contact_id": contact.pk,
        "time_zone": heat.zone.key,
        "own_time_zone": heat.own_zone,
        "opens": heat.opens,
        "replies": heat.replies,
        "best": {"weekday": best[0], "hour": best[1]} if best else None,
        "words": heat.best_words,
        "next_at": queries.next_slot(best, heat.zone, timezone.now()) if best else None,
        "grid": heat.counts,
    }


class ScheduleIn(SendIn):
    send_at: Moment | None = Field(
        None, description="When to send it (ISO 8601, with its offset); or ``best_time``."
    )
    best_time: bool = Field(
        False,
        description="Send at the next start of the best hour of the first To address that "
        "is a contact you may see (422 when none is known).",
    )


class ScheduledOut(Schema):
    id: int
    state: ScheduledState
    send_at: datetime
    subject: str
    recipients: list[str]
    track: bool
    best_time_of: str = Field(description="Scheduled at this contact's best time; empty: not.")
    sent_message_id: int | None = Field(description="The stored message, once sent.")
    error: str = Field(description="Why it was not sent, in words.")
    created_at: datetime


def _scheduled_out(row: ScheduledSend) -> dict[str, Any]:
    return {
        "id": row.pk,
        "state": row.state,
        "send_at": row.send_at,
        "subject": row.subject,
        "recipients": row.recipients,
        "track": row.track,
        "best_time_of": row.best_time_of,
        "sent_message_id": row.sent.message_id if row.sent_id and row.sent else None,
        "error": row.error,
        "created_at": row.created_at,
    }


@scheduled_router.get("", response={200: Page[ScheduledOut]}, openapi_extra=READ_ERRORS)
def list_scheduled(request: HttpRequest, params: Query[ListParams]) -> dict[str, Any]:
    """Your scheduled messages, soonest first (sent and cancelled ones too)."""
    user = current_user(request)
    qs = ScheduledSend.objects.filter(user=user).select_related("sent").order_by("send_at", "pk")
    page = records.page(qs, params)
    page["items"] = [_scheduled_out(r) for r in page["items"]]
    return page


@scheduled_router.post("", response={201: ScheduledOut}, openapi_extra=SCHEDULE)
def schedule(request: HttpRequest, payload: ScheduleIn) -> dict[str, Any]:
    """Keep a message (the body of ``/messages/send``) to send at ``send_at`` or at the
    best time. Its headers are checked now (422); what only the server can say is said
    when it is sent (``state`` failed, ``error``)."""
    user = current_user(request)
    draft = draft_of(user, payload)
    best_of = ""
    if payload.best_time:
        contact = queries.contact_for(user, None, list(draft.to))
        if contact is None:
            raise Invalid.one("best_time", "None of the To addresses is a contact you may see.")
        heat = queries.heatmap(user, contact)
        if heat.best is None:
            raise Invalid.one("best_time", f"{contact}: {heat.best_words}")
        send_at, best_of = queries.next_slot(heat.best, heat.zone, timezone.now()), str(contact)
    elif payload.send_at is None:
        raise Invalid.one("send_at", "Give send_at, or best_time: true.")
    else:
        send_at = payload.send_at
    record = None
    if payload.record is not None:
        record = _visible_record(user, payload.record)
    try:
        row = scheduling.schedule(
            user,
            draft,
            send_at=send_at,
            record_module=payload.record.module if payload.record else "",
            record_id=record.pk if record is not None else None,
            track=payload.track,
            template_id=payload.template_id,
            best_time_of=best_of,
        )
    except ComposeError as exc:
        raise Invalid.one(FIELDS.get(exc.field, exc.field), str(exc)) from None
    except scheduling.ScheduleError as exc:
        raise Invalid.one(exc.field, str(exc)) from None
    return _scheduled_out(row)


def _own(request: HttpRequest, id: int) -> ScheduledSend:
    user = current_user(request)
    return records.get_or_404(ScheduledSend.objects.filter(user=user).select_related("sent"), id)


@scheduled_router.get("/{id}", response={200: ScheduledOut}, openapi_extra=READ_ERRORS)
def read_scheduled(request: HttpRequest, id: Id) -> dict[str, Any]:
    """One of your scheduled messages (another's answers 404)."""
    return _scheduled_out(_own(request, id))


@scheduled_router.post("/{id}/cancel", response={200: ScheduledOut}, openapi_extra=CANCEL)
def cancel_scheduled(request: HttpRequest, id: Id) -> dict[str, Any]:
    """Cancel it while it waits; 409 once it is being sent, sent or cancelled."""
    row = _own(request, id)
    try:
        row = scheduling.cancel(current_user(request), row.pk)
    except scheduling.NotCancellable as exc:
        raise HttpError(409, str(exc)) from None
    return _scheduled_out(row)
