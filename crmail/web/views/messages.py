"""Opening a message: its headers, its attachments, and its body in a sandboxed frame.

The page (``message_page``) is one of crmail's own pages under the site-wide policy. The
body is a document of its own (``message_body``), shown in
``<iframe sandbox="allow-popups allow-popups-to-escape-sandbox">``: no script runs in
it, it has no access to crmail's origin, and its Content-Security-Policy
(``security.MESSAGE_BODY_POLICY``) lets it load images from crmail only. The HTML in it
is cleaned by ``crmail.mail.display`` first; docs/decisions/014-safe-display.md says why
each layer is there.

Images inside the frame come from two views that need no session: a sandboxed frame's
requests carry no ``SameSite=Lax`` cookie, so ``message_inline`` (a ``cid:`` part) and
``remote_image`` (the proxy) answer only to addresses crmail signed when it rendered the
body for a viewer who may open the message.

Bodies are read from the raw message each time (``parse.parse_message``; the stored
columns serve lists and search): a message still waiting to be parsed shows all the
same, and one that could not be parsed shows its raw header lines, escaped, with its
raw download.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_safe

from crmail.crm.models import RECORD_MODELS, Contact, EmailAddress, Lead, Record
from crmail.linking import senders
from crmail.linking.models import Module
from crmail.mail.display import (
    SafeHtml,
    clean_html,
    header_block,
    subject_from_headers,
    text_to_html,
)
from crmail.mail.downloads import (
    DOWNLOAD_POLICY,
    INLINE_IMAGE_TYPES,
    attachment_response,
    inline_image,
    inline_part,
    inline_token,
    raw_download,
)
from crmail.mail.ingest import dated_ahead
from crmail.mail.models import Message, ParseState
from crmail.mail.parse import AttachmentInfo, ParsedMessage, Unparseable, parse_message
from crmail.mail.store import body_waits, raw_bytes
from crmail.mailboxes import replies
from crmail.mailboxes.replies import own_addresses
from crmail.people import access
from crmail.people.models import User
from crmail.sharing.actions import record_open
from crmail.sharing.visibility import may_see_message, visible_messages
from crmail.web import image_proxy
from crmail.web.security import MESSAGE_BODY_POLICY
from crmail.web.views import insights as insights_pages
from crmail.web.views import intelligence as intelligence_pages
from crmail.web.views.message_deals import deals_context
from crmail.web.views.message_mailbox import mailbox_context
from crmail.web.views.message_tags import tags_context

log = logging.getLogger(__name__)


def _message_for(request: HttpRequest, pk: int) -> Message:
    """The message when the viewer may see it (``sharing.visibility``); 404 otherwise,
    whether or not it exists."""
    message = get_object_or_404(Message.objects.defer("body_text"), pk=pk)
    if not may_see_message(request.user, message):  # type: ignore[arg-type]
        raise Http404("No such message.")
    return message


def _opened_from(request: HttpRequest, message: Message) -> Record | None:
    """The record the message was opened from (``?on=contacts/12``), when the viewer may
    see the record and the message is on it for them."""
    module, _, raw_id = request.GET.get("on", "").partition("/")
    record_id = int(raw_id) if raw_id.isdigit() and len(raw_id) < 19 else None
    user: User = request.user  # type: ignore[assignment]
    if module not in Module.values or record_id is None:
        return None
    if not visible_messages(user, module, record_id).filter(pk=message.pk).exists():
        return None
    return access.visible(user, RECORD_MODELS[module]).filter(pk=record_id).first()


def _audit_open(request: HttpRequest, message: Message, record: Record | None) -> None:
    """Record that the viewer opened ``message``, and from which record."""
    user: User = request.user  # type: ignore[assignment]
    if record is not None:
        record_open(user, message, module=record.MODULE, record_id=record.pk)
    else:
        record_open(user, message)


def _record_pages(user: User, parsed: ParsedMessage) -> dict[str, str]:
    """The page of the Lead or Contact each participant's address belongs to, among the
    records ``user`` may see (a Contact before a Lead; the oldest first)."""
    addresses = parsed.addresses()
    pages: dict[str, str] = {}
    for model in (Contact, Lead):
        field = "contact" if model is Contact else "lead"
        rows = (
            EmailAddress.objects.filter(
                address__in=addresses, **{f"{field}__in": access.visible(user, model)}
            )
            .order_by(f"{field}_id")
            .values_list("address", f"{field}_id")
        )
        for address, pk in rows:
            pages.setdefault(address, reverse("web:record_detail", args=[model.MODULE, pk]))
    return pages


@dataclass
class Reading:
    """A message as read from its raw bytes for display."""

    raw: bytes
    parsed: ParsedMessage | None  # None: the message could not be parsed
    inline_parts: dict[str, AttachmentInfo] = field(default_factory=dict)  # by Content-ID


def _read(message: Message) -> Reading:
    raw = raw_bytes(message)
    parsed: ParsedMessage | None = None
    if message.parse_state != ParseState.FAILED:
        try:
            parsed = parse_message(raw)
        except Unparseable:
            parsed = None
        except Exception as exc:  # parse.py promises Unparseable only; never a 500 on a message
            # The type only: an exception's text may quote the message (STYLE: no bodies).
            log.warning("message %s: %s while reading it to show", message.pk, type(exc).__name__)
            parsed = None
    reading = Reading(raw=raw, parsed=parsed)
    if parsed is not None:
        for part in parsed.attachments:
            if part.content_id and part.content_type in INLINE_IMAGE_TYPES:
                reading.inline_parts.setdefault(part.content_id, part)
                reading.inline_parts.setdefault(part.content_id.lower(), part)
    return reading


@dataclass
class Body:
    html: str
    cleaned: SafeHtml | None = None  # when the body was HTML
    used_parts: set[int] = field(default_factory=set)  # parts shown as cid: images


def _render_body(message: Message, reading: Reading, remote: bool, viewer: User) -> Body:
    """The body's HTML for the frame: cleaned HTML, else linkified text."""
    parsed = reading.parsed
    if parsed is None:
        return Body("")
    body = Body("")

    def inline_url(content_id: str) -> str | None:
        part = reading.inline_parts.get(content_id) or reading.inline_parts.get(content_id.lower())
        if part is None:
            return None
        body.used_parts.add(part.part)
        url = reverse("web:message_inline", args=[message.pk, part.part])
        return f"{url}?s={quote(inline_token(message.pk, part.part, viewer.pk))}"

    def remote_url(url: str) -> str:
        return f"{reverse('web:remote_image')}?u={quote(image_proxy.sign(url))}"

    if parsed.html.strip():
        body.cleaned = clean_html(
            parsed.html, inline_url=inline_url, remote_url=remote_url if remote else None
        )
        body.html = body.cleaned.html
    elif parsed.text.strip():
        body.html = text_to_html(parsed.text)
    else:
        body.html = '<p class="empty">This message has no text.</p>'
    return body


def _people(parsed: ParsedMessage, role: str, pages: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "label": f"{p.name} <{p.address}>" if p.name else p.address,
            "url": pages.get(p.address, "") if p.valid else "",
            "address": p.address if p.valid else "",
        }
        for p in parsed.participants
        if p.role == role
    ]


def _add_sender(
    user: User, message: Message, parsed: ParsedMessage, people: dict[str, list[dict[str, Any]]]
) -> None:
    """Put "Add as contact" and "Add as lead" beside the person at the other end of the
    message (From, or the first To of mail the user sent) when no Lead or Contact the user
    may see has their address, and the user may create such records."""
    sender = senders.unknown_sender(parsed, user, own_addresses(user))
    if sender is None:
        return
    buttons = [
        {
            "label": f"Add as {RECORD_MODELS[module]._meta.verbose_name}",
            "url": reverse("web:message_sender_create", args=[message.pk, module]),
        }
        for module in senders.MODULES
        if access.can_create(user, RECORD_MODELS[module])
    ]
    role = "from" if sender.received else "to"
    for person in people[role]:
        if person["address"] == sender.address:
            person["add"] = buttons
            return


def _answer_urls(message: Message, record: Record | None) -> dict[str, str]:
    """Reply, reply all and forward: the composer, from the record the message was opened
    from when there is one (the answer is recorded on it)."""
    if record is not None:
        base = reverse("web:record_compose", args=[record.MODULE, record.pk])
    else:
        base = reverse("web:compose")
    return {mode: f"{base}?message={message.pk}&mode={mode}" for mode in replies.MODES}


@login_required
@require_safe
def message_page(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message_for(request, pk)
    opened_from = _opened_from(request, message)
    if request.GET.get("images") != "1":  # showing remote images reloads the same opening
        _audit_open(request, message, opened_from)
    reading = _read(message)
    remote = request.GET.get("images") == "1"
    parsed = reading.parsed
    context: dict[str, object] = {
        "message": message,
        "remote": remote,
        "failed": parsed is None,
        "opened_from": opened_from,
        "on": f"{opened_from.MODULE}/{opened_from.pk}" if opened_from else "",
        "answer": _answer_urls(message, opened_from) if parsed is not None else {},
    }
    context |= tags_context(message)
    context |= insights_pages.message_context(message.pk)
    context |= intelligence_pages.panel_context(request.user, message)  # type: ignore[arg-type]
    context |= deals_context(request, message)
    context |= mailbox_context(request, message, opening=request.GET.get("images") != "1")
    context["body_waits"] = body_waits(message)
    if parsed is None:
        headers = header_block(reading.raw)
        context.update(
            subject=message.subject or subject_from_headers(headers),
            headers_text=headers,
            date=message.date,
        )
        return render(request, "web/messages/page.html", context)
    body = _render_body(message, reading, remote, request.user)  # type: ignore[arg-type]
    cleaned = body.cleaned
    attachments = [
        {
            "name": a.filename or f"part {a.part}",
            "type": a.content_type,
            "size": a.size,
            "url": reverse("web:message_attachment", args=[message.pk, a.part]),
        }
        for a in parsed.attachments
        if a.part not in body.used_parts
    ]
    body_url = reverse("web:message_body", args=[message.pk])
    pages = _record_pages(request.user, parsed)  # type: ignore[arg-type]
    people = {role: _people(parsed, role, pages) for role in ("from", "to")}
    _add_sender(request.user, message, parsed, people)  # type: ignore[arg-type]
    context.update(
        subject=parsed.subject or message.subject,
        date=parsed.date or message.date,
        # Dated ahead by the sender's clock: lists go by when it arrived.
        listed_at=message.date if dated_ahead(parsed.date, message.date) else None,
        undated=parsed.date is None,  # no readable Date header: dated when it arrived
        senders=people["from"],
        to=people["to"],
        cc=_people(parsed, "cc", pages),
        bcc=_people(parsed, "bcc", pages),
        attachments=attachments,
        body_url=f"{body_url}?images=1" if remote else body_url,
        blocked=cleaned.blocked_images if cleaned else 0,
        proxied=cleaned.remote_images if cleaned else 0,
        partial=message.parse_state == ParseState.PARTIAL,
    )
    return render(request, "web/messages/page.html", context)


@login_required
@require_safe
@xframe_options_sameorigin
def message_body(request: HttpRequest, pk: int) -> HttpResponse:
    """The document inside the message page's sandboxed frame."""
    message = _message_for(request, pk)
    reading = _read(message)
    body = _render_body(
        message,
        reading,
        remote=request.GET.get("images") == "1",
        viewer=request.user,  # type: ignore[arg-type]
    ).html
    if reading.parsed is None:
        body = (
            '<p class="empty">crmail could not read this message. Its header lines and '
            "its raw download are on the message page.</p>"
        )
    response = render(request, "web/messages/frame.html", {"body": body})
    response["Content-Security-Policy"] = MESSAGE_BODY_POLICY
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_safe
def message_attachment(request: HttpRequest, pk: int, part: int) -> HttpResponse:
    reading = _read(_message_for(request, pk))
    return attachment_response(reading.raw, reading.parsed, part)


@login_required
@require_safe
def message_raw(request: HttpRequest, pk: int) -> HttpResponse:
    """The message exactly as the server gave it, as an .eml file."""
    message = _message_for(request, pk)
    if body_waits(message):
        messages.error(
            request,
            "Only this message's headers are in crmail: fetch the whole message first, "
            "then download it.",
        )
        return redirect("web:message", pk=message.pk)
    return raw_download(raw_bytes(message), message.pk)


@require_safe
def message_inline(request: HttpRequest, pk: int, part: int) -> HttpResponse:
    """An image part of a message, for its ``cid:`` reference inside the body frame.

    No session: the frame's requests carry none. The ``s`` parameter, signed when the
    body was rendered for a viewer who may open the message, names this message, part and
    viewer; the image is served only while that viewer may still see the message.
    """
    named = inline_part(request.GET.get("s", ""))
    if named is None or named[:2] != (pk, part):
        raise Http404("No such image.")
    message = get_object_or_404(Message, pk=pk)
    viewer = User.objects.filter(pk=named[2], is_active=True).first()
    if viewer is None or not may_see_message(viewer, message):  # no longer theirs to see
        raise Http404("No such image.")
    reading = _read(message)
    return inline_image(reading.raw, reading.parsed, part, max_age=86400)


@require_safe
def remote_image(request: HttpRequest) -> HttpResponse:
    """A remote image fetched by crmail (``image_proxy``) for an address crmail signed."""
    try:
        url = image_proxy.unsign(request.GET.get("u", ""))
        image = image_proxy.fetch(url)
    except image_proxy.Refused as refused:
        response = HttpResponse(
            f"Image not shown: {refused}.", status=refused.status, content_type="text/plain"
        )
        response["Content-Security-Policy"] = DOWNLOAD_POLICY
        return response
    response = HttpResponse(image.data, content_type=image.content_type)
    response["Content-Security-Policy"] = DOWNLOAD_POLICY
    response["Cache-Control"] = "private, max-age=86400"
    return response
