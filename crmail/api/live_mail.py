"""Mail asked live from mailboxes that keep no copy (privacy mode), in the API.

A record's Emails list (``GET /{module}/{id}/emails``) carries live items beside the
stored ones when the caller's view asks such mailboxes (``sharing.live``): ``live`` true,
``id`` null, ``mailbox_id`` and ``remote_id`` naming the message, ``api_url`` reading it.
Such a list is paged with ``next_cursor``; a provider that does not answer is said in
``notices`` and its mail left out of the page (never an error).

A live message is read with ``GET /{module}/{id}/emails/live/{mailbox_id}/{remote_id}``
(from the record it is on) or ``GET /mailboxes/{id}/live/{remote_id}`` (one's own
mailbox): the same access as stored mail (404 otherwise), the body cleaned as crmail
shows it, 502 when the provider does not answer. Nothing of it is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest
from django.urls import reverse
from ninja.errors import HttpError

from crmail.api.errors import Invalid
from crmail.api.schemas import EmailFilters
from crmail.mail.display import clean_html
from crmail.mail.models import Message
from crmail.mailboxes.drivers.base import DriverError
from crmail.people.models import User
from crmail.sharing import live
from crmail.sharing.actions import record_live_open
from crmail.sharing.live import LiveItem, LiveReading
from crmail.sharing.visibility import LiveAccess


def live_item(request: HttpRequest, module: str, record_id: int, item: LiveItem) -> dict[str, Any]:
    """A live message as an item of a record's Emails list."""
    mailbox, message = item.mailbox, item.message
    page = reverse("web:live_message", args=[mailbox.pk, message.remote_id])
    return {
        "id": None,
        "live": True,
        "mailbox_id": mailbox.pk,
        "remote_id": message.remote_id,
        "subject": message.subject,
        "from": {"name": item.sender_name, "address": item.sender_address},
        "to": list(message.recipients),
        "date": message.received_at,
        "snippet": "",
        "thread_id": message.thread_id or None,
        "has_attachments": False,
        "automated": False,
        "list_id": "",
        "links": [],
        "tags": [],
        "url": request.build_absolute_uri(f"{page}?on={module}/{record_id}"),
        "api_url": request.build_absolute_uri(
            f"/api/v1/{module}/{record_id}/emails/live/{mailbox.pk}/{message.remote_id}"
        ),
    }


def mixed_page(
    request: HttpRequest,
    user: User,
    module: str,
    record_id: int,
    filters: EmailFilters,
    stored: Any,
    mailboxes: list[LiveAccess],
    stored_item: Callable[[list[Message]], list[dict[str, Any]]],
) -> dict[str, Any]:
    """A page of a record's Emails list with live mail (``stored``: the stored list)."""
    if filters.offset:
        raise Invalid.one(
            "offset", "This list includes live mail: page it with cursor (next_cursor)."
        )
    try:
        page = live.merged_page(
            user,
            module,
            record_id,
            stored,
            mailboxes,
            cursor=filters.cursor,
            limit=min(filters.limit, 100),
        )
    except live.BadCursor as exc:
        raise Invalid.one("cursor", str(exc)) from None
    messages = [m for m in page.items if isinstance(m, Message)]
    stored_out = {out["id"]: out for out in stored_item(messages)}
    items = [
        stored_out[item.pk]
        if isinstance(item, Message)
        else live_item(request, module, record_id, item)
        for item in page.items
    ]
    return {
        "items": items,
        "count": stored.count(),
        "limit": min(filters.limit, 100),
        "offset": 0,
        "live_mailboxes": page.live_mailboxes,
        "next_cursor": page.next_cursor,
        "notices": page.notices,
    }


def _people(reading: LiveReading, role: str) -> list[dict[str, str]]:
    parsed = reading.parsed
    if parsed is None:
        return []
    return [{"name": p.name, "address": p.address} for p in parsed.participants if p.role == role]


def read(
    request: HttpRequest,
    user: User,
    mailbox_id: int,
    remote_id: str,
    module: str | None = None,
    record_id: int | None = None,
) -> dict[str, Any]:
    """A live message the caller may see (404 otherwise; 502 when the provider fails)."""
    try:
        reading = live.open_message(user, mailbox_id, remote_id, module, record_id)
    except DriverError as exc:
        raise HttpError(502, f"The provider did not answer: {exc}") from None
    if reading is None:
        raise Http404
    record_live_open(
        user, reading.access.mailbox, remote_id, module=module or "", record_id=record_id
    )
    parsed = reading.parsed
    page = reverse("web:live_message", args=[mailbox_id, remote_id])
    if module is not None:
        page += f"?on={module}/{record_id}"
    out: dict[str, Any] = {
        "mailbox_id": mailbox_id,
        "remote_id": remote_id,
        "live": True,
        "headers": None,
        "text": "",
        "html": "",
        "attachments": [],
        "url": request.build_absolute_uri(page),
    }
    if parsed is None:
        return out
    out["headers"] = {
        "subject": parsed.subject,
        "date": reading.date,
        "from": _people(reading, "from"),
        "to": _people(reading, "to"),
        "cc": _people(reading, "cc"),
        "bcc": _people(reading, "bcc"),
        "reply_to": _people(reading, "reply-to"),
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": parsed.references,
    }
    out["text"] = parsed.text
    if parsed.html.strip():
        out["html"] = clean_html(parsed.html, inline_url=lambda _cid: None).html
    out["attachments"] = [
        {
            "part": a.part,
            "name": a.filename or f"part {a.part}",
            "content_type": a.content_type,
            "size": a.size,
        }
        for a in parsed.attachments
    ]
    return out
