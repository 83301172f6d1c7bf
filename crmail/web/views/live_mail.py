"""Opening a message asked live from a mailbox that keeps no copy (privacy mode).

The same safe display as synced mail (docs/decisions/014): the page shows the headers,
the body is a document of its own in a sandboxed frame under ``MESSAGE_BODY_POLICY``,
its HTML cleaned by ``mail.display``. Who may open it is decided by ``sharing.live``
(the owner, or a viewer of the record given by ``?on=contacts/12`` whose live list asks
that mailbox for them); anyone else gets 404. The bytes come from the provider, kept a
few minutes in memory (``mailboxes.live``), never in the database. Images inside the
message (``cid:`` parts) are not shown; remote images come through the proxy on request.
"""

from __future__ import annotations

from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_safe

from crmail.crm.models import RECORD_MODELS, Record
from crmail.linking.models import Module
from crmail.mail.display import clean_html, header_block, subject_from_headers, text_to_html
from crmail.mail.downloads import (
    INLINE_IMAGE_TYPES,
    attachment_response,
    inline_image,
    live_inline_part,
    live_inline_token,
)
from crmail.mailboxes import live
from crmail.mailboxes.drivers.base import DriverError
from crmail.people import access
from crmail.people.models import User
from crmail.sharing.actions import record_live_open
from crmail.sharing.live import LiveReading, open_message
from crmail.web import image_proxy
from crmail.web.security import MESSAGE_BODY_POLICY


def _on(request: HttpRequest) -> tuple[str | None, int | None]:
    return _record_of(request.GET.get("on", ""))


def _record_of(on: str) -> tuple[str | None, int | None]:
    """(module, record id) of an ``on`` value ("contacts/12"); (None, None) otherwise."""
    module, _, raw_id = on.partition("/")
    record_id = int(raw_id) if raw_id.isdigit() and len(raw_id) < 19 else None
    if module not in Module.values or record_id is None:
        return None, None
    return module, record_id


def _reading(request: HttpRequest, mailbox_id: int, remote_id: str) -> LiveReading:
    module, record_id = _on(request)
    user: User = request.user  # type: ignore[assignment]
    reading = open_message(user, mailbox_id, remote_id, module, record_id)
    if reading is None:
        raise Http404("No such message.")
    return reading


def body_html(
    reading: LiveReading, *, remote: bool, viewer: User | None = None, on: str = ""
) -> tuple[str, int, int]:
    """The body's HTML for the frame, with the remote images blocked and shown, and its
    ``cid:`` images (for ``viewer``, opened from ``on``) served by ``live_message_inline``."""
    parsed = reading.parsed
    if parsed is None:
        return (
            '<p class="empty">crmail could not read this message; its header lines are on '
            "the message page.</p>",
            0,
            0,
        )

    def remote_url(url: str) -> str:
        return f"{reverse('web:remote_image')}?u={quote(image_proxy.sign(url))}"

    images = {
        a.content_id.lower(): a.part
        for a in parsed.attachments
        if a.content_id and a.content_type in INLINE_IMAGE_TYPES
    }

    def inline_url(content_id: str) -> str | None:
        part = images.get(content_id.lower())
        if part is None or viewer is None:
            return None
        box, mid = reading.access.mailbox.pk, reading.remote_id
        token = live_inline_token(box, mid, part, viewer.pk, on)
        return f"{reverse('web:live_message_inline', args=[box, mid, part])}?s={quote(token)}"

    if parsed.html.strip():
        cleaned = clean_html(
            parsed.html, inline_url=inline_url, remote_url=remote_url if remote else None
        )
        return cleaned.html, cleaned.blocked_images, cleaned.remote_images
    if parsed.text.strip():
        return text_to_html(parsed.text), 0, 0
    return '<p class="empty">This message has no text.</p>', 0, 0


def _people(reading: LiveReading, role: str) -> list[str]:
    if reading.parsed is None:
        return []
    return [
        f"{p.name} <{p.address}>" if p.name else p.address
        for p in reading.parsed.participants
        if p.role == role
    ]


def _record(request: HttpRequest) -> Record | None:
    module, record_id = _on(request)
    if module is None:
        return None
    return access.visible(request.user, RECORD_MODELS[module]).filter(pk=record_id).first()  # type: ignore[arg-type]


@login_required
@require_safe
def live_message_page(request: HttpRequest, mailbox_id: int, remote_id: str) -> HttpResponse:
    try:
        reading = _reading(request, mailbox_id, remote_id)
    except DriverError as exc:
        messages.error(request, f"The provider did not answer ({exc}): try again shortly.")
        return render(request, "web/messages/live.html", {"failed": True}, status=502)
    user: User = request.user  # type: ignore[assignment]
    on = request.GET.get("on", "")
    module, record_id = _record_of(on)
    record_live_open(
        user, reading.access.mailbox, remote_id, module=module or "", record_id=record_id
    )
    remote = request.GET.get("images") == "1"
    _, blocked, proxied = body_html(reading, remote=remote, viewer=user, on=on)
    body_url = reverse("web:live_message_body", args=[mailbox_id, remote_id])
    query = "&".join(
        part for part in (f"on={quote(on)}" if on else "", "images=1" if remote else "") if part
    )
    parsed = reading.parsed
    headers = header_block(reading.raw) if parsed is None else ""
    context = {
        "failed": False,
        "opened_from": _record(request),
        "provider": live.provider_name(reading.access.mailbox),
        "mailbox": reading.access.mailbox,
        "subject": parsed.subject if parsed else subject_from_headers(headers),
        "date": reading.date,
        "senders": _people(reading, "from"),
        "to": _people(reading, "to"),
        "cc": _people(reading, "cc"),
        "attachments": [
            {
                "name": a.filename or f"part {a.part}",
                "type": a.content_type,
                "size": a.size,
                "url": reverse("web:live_message_attachment", args=[mailbox_id, remote_id, a.part])
                + (f"?on={quote(on)}" if on else ""),
            }
            for a in (parsed.attachments if parsed else [])
        ],
        "headers_text": headers,
        "body_url": f"{body_url}?{query}" if query else body_url,
        "blocked": blocked,
        "remote": remote,
        "proxied": proxied,
        "images_url": f"?{'on=' + quote(on) + '&' if on else ''}images=1",
        "block_url": f"?on={quote(on)}" if on else "?",
    }
    return render(request, "web/messages/live.html", context)


@login_required
@require_safe
def live_message_attachment(
    request: HttpRequest, mailbox_id: int, remote_id: str, part: int
) -> HttpResponse:
    """An attachment of a live message, as a download (the same checks as its page; the
    message from the short-lived cache, nothing stored)."""
    try:
        reading = _reading(request, mailbox_id, remote_id)
    except DriverError as exc:
        return HttpResponse(
            f"The provider did not answer ({exc}): try again shortly.",
            status=502,
            content_type="text/plain; charset=utf-8",
        )
    return attachment_response(reading.raw, reading.parsed, part)


@require_safe
def live_message_inline(
    request: HttpRequest, mailbox_id: int, remote_id: str, part: int
) -> HttpResponse:
    """An image part of a live message, for its ``cid:`` reference inside the body frame:
    no session (the frame's requests carry none); the signed ``s`` names the message, the
    part, the viewer and the record, and the viewer must still be able to open it."""
    named = live_inline_part(request.GET.get("s", ""))
    if named is None or named[:3] != (mailbox_id, remote_id, part):
        raise Http404("No such image.")
    viewer = User.objects.filter(pk=named[3], is_active=True).first()
    if viewer is None:
        raise Http404("No such image.")
    module, record_id = _record_of(named[4])
    try:
        reading = open_message(viewer, mailbox_id, remote_id, module, record_id)
    except DriverError:
        raise Http404("No such image.") from None
    if reading is None:
        raise Http404("No such image.")
    return inline_image(reading.raw, reading.parsed, part, max_age=3600)


@login_required
@require_safe
@xframe_options_sameorigin
def live_message_body(request: HttpRequest, mailbox_id: int, remote_id: str) -> HttpResponse:
    """The document inside the live message page's sandboxed frame."""
    try:
        reading = _reading(request, mailbox_id, remote_id)
        body, _, _ = body_html(
            reading,
            remote=request.GET.get("images") == "1",
            viewer=request.user,  # type: ignore[arg-type]
            on=request.GET.get("on", ""),
        )
    except DriverError:
        body = '<p class="empty">The provider did not answer: reload the page shortly.</p>'
    response = render(request, "web/messages/frame.html", {"body": body})
    response["Content-Security-Policy"] = MESSAGE_BODY_POLICY
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response
