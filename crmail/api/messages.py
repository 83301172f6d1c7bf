"""``/messages``: reading one message (SPEC F4, F5) and sending mail from crmail (SPEC F3).

``GET /messages/{id}`` answers a message the caller may see (``sharing.visibility``; 404
otherwise, whether or not it exists) and records the opening in the audit log. A record's
Emails list (``GET /{contacts|leads|accounts|deals}/{id}/emails``) is routed by
``resource.py`` and answered by ``record_emails_page`` here.

``/messages/{id}/deals`` links a message to deals by hand, takes the link back, or moves
it to another deal (SPEC F4; ``linking.deal_links`` decides, ``linking.links`` writes): the
message must be one the caller may see (404), a deal in the path one they may view (404),
a deal in the body one they may view (422 naming the field), and every deal concerned
one they may edit (403).

``PATCH /messages/{id}`` (``seen``, ``flagged``), ``POST /messages/{id}/move`` and
``DELETE /messages/{id}`` change your own copy of a message on its mail server first and
then in crmail (``mailboxes.twoway``; SPEC F2): 404 for a message you may not see, 409
for one you see without holding a copy of it yourself (a colleague's shared mail), 502
when the server refuses or cannot be reached (nothing changed on either side).
Reading a message here does not mark it read: scripts read mail without a person
reading it; the message page does, for a person.
``POST /messages/{id}/reply`` and ``/forward`` answer a message the caller may see (404
otherwise) in its thread (``mailboxes.replies``), from their mailbox that received it.

``POST /messages/send`` sends through the caller's active mailbox's SMTP server, stores
the message like synced mail, and files a copy in the server's Sent folder where the
mailbox asks for it. Sent from a record, the mail is recorded against it (the record must
be one the caller may see: 404 otherwise). Headers are checked in ``crmail.mail.compose``:
a line break in a header answers 422 naming the field, and nothing is sent. With
``template_id`` the subject and text are the template filled for the record and the caller
(``crmail.emailtemplates.merge``) and are sent exactly so; a field that cannot be filled
answers 422 naming it, and nothing is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from django.http import Http404, HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from ninja import Router
from ninja.errors import HttpError
from pydantic import Field, StrictBool, model_validator

from crmail.api import live_mail
from crmail.api.auth import current_user
from crmail.api.errors import Invalid
from crmail.api.intelligence import attach, filter_of
from crmail.api.records import counted_page
from crmail.api.schemas import (
    READ_ERRORS,
    EmailFilters,
    FetchedBodyOut,
    ForwardIn,
    Id,
    Input,
    LinkOut,
    MessageOut,
    MessageStateOut,
    RecordRef,
    ReplyIn,
    SendIn,
    SentOut,
    errors_doc,
)
from crmail.crm.models import RECORD_MODELS, Deal, Record
from crmail.emailtemplates import actions as template_actions
from crmail.emailtemplates import merge
from crmail.insights import switch
from crmail.insights.tracking import Tracker
from crmail.intelligence import queries as intelligence
from crmail.linking import deal_links
from crmail.linking.links import (
    AlreadyLinked,
    LinkError,
    NotLinked,
    SameDeal,
    StaysLinked,
    link_answer,
)
from crmail.linking.models import Link, Module, Reason
from crmail.mail import tags
from crmail.mail.compose import ComposeError, Draft, safe_html, text_alternative
from crmail.mail.display import clean_html

# The web's downloads (safe types, RFC 6266 names) and signed cid: addresses serve the
# API too, so a file or image is handed out one way only.
from crmail.mail.downloads import INLINE_IMAGE_TYPES, attachment_response, inline_token
from crmail.mail.models import Message, ParseState
from crmail.mail.parse import ParsedMessage, Unparseable, parse_message
from crmail.mail.store import body_waits, raw_bytes
from crmail.mailboxes import bodies, replies, twoway
from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.models import Location
from crmail.mailboxes.sending import (
    SendingNotPossible,
    message_limit,
    send_message,
    sent_copy_outcome,
)
from crmail.people import access
from crmail.people.models import User
from crmail.sharing import emails
from crmail.sharing import live as live_emails
from crmail.sharing.actions import record_open
from crmail.sharing.visibility import may_see_message

log = logging.getLogger(__name__)
router = Router(tags=["Messages"])

# What compose.py calls a field, as the request names it.
FIELDS = {"references": "in_reply_to"}
SEND_ERRORS = errors_doc(400, 401, 404, 409, 422, 502)


def _visible_record(user: User, ref: RecordRef | None) -> Record | None:
    """The record mail is sent from: one the caller may see (404 otherwise)."""
    if ref is None:
        return None
    record = access.visible(user, RECORD_MODELS[ref.module]).filter(pk=ref.id).first()
    if record is None:
        raise Http404
    return record


def _send(
    user: User,
    draft: Draft,
    record: RecordRef | None,
    start: replies.Start | None = None,
    *,
    track: bool = True,
    template_id: int | None = None,
) -> dict[str, Any]:
    """Send ``draft`` (an answer to ``start.original`` when given) and describe the result;
    tracked (SPEC F9) when the organisation tracks mail and ``track`` does not say no."""
    _visible_record(user, record)  # 404 for one the caller may not see
    module, record_id = ("", None) if record is None else (record.module, record.id)
    tracker = Tracker(track=track and switch.state().tracking, template_id=template_id)
    try:
        sent = send_message(
            user,
            draft,
            mailbox=start.mailbox if start is not None else None,
            record_module=module,
            record_id=record_id,
            tracking=tracker,
        )
    except ComposeError as exc:
        raise Invalid.one(FIELDS.get(exc.field, exc.field), str(exc)) from None
    except SendingNotPossible as exc:
        raise HttpError(409, str(exc)) from None
    except DriverError as exc:
        raise HttpError(502, f"The outgoing server did not take the message: {exc}") from None
    if start is not None:
        link_answer(sent.message, start.original, user)
    stored, note = sent_copy_outcome(sent)
    return {
        "message_id": sent.message_id,
        "message_id_header": Message.objects.values_list("message_id", flat=True).get(
            pk=sent.message_id
        ),
        "sent_id": sent.pk,
        "from_address": sent.from_address,
        "recipients": sent.recipients,
        "sent_copy_stored": stored,
        "sent_copy_note": note,
        "tracked": tracker.key is not None,
    }


def _from_template(user: User, payload: SendIn, record: Record | None) -> tuple[str, str]:
    """Subject and text of ``payload.template_id`` filled for ``record`` and ``user``:
    422 naming the field when the template is not one the user may use, when the request
    also writes the message itself, or when a merge field cannot be filled."""
    given = [k for k in ("subject", "text", "html") if k in payload.model_fields_set]
    if given:
        raise Invalid(
            [
                {"field": k, "message": "The template gives the message: leave this out."}
                for k in given
            ]
        )
    template = template_actions.readable(user).filter(pk=payload.template_id).first()
    if template is None:
        raise Invalid.one("template_id", "There is no template with this id that you may use.")
    try:
        done = merge.render_template(
            template.subject, template.body, merge.records_for(user, record)
        )
    except merge.MergeError as exc:
        raise Invalid.one(exc.part, f"The template cannot be sent: {exc}") from None
    return done.subject, done.body


@router.post("/send", response={201: SentOut}, openapi_extra=SEND_ERRORS, summary="Send a message")
def send(request: HttpRequest, payload: SendIn) -> dict[str, Any]:
    """Send as ``from`` (your mailbox's address, one of its extra addresses, or an
    organisation address your profile allows) to ``to``, ``cc`` and ``bcc``, with replies
    to ``reply_to`` when given; with ``template_id``, the template filled for ``record``
    gives the subject and text. With ``html`` the message is multipart/alternative: the HTML,
    cleaned as crmail cleans mail it shows, and a text part (``text``, else the text of
    the cleaned HTML). Answers 409 when you have no active mailbox or it has no outgoing
    server, 502 when that server refuses (both say why), and otherwise the stored message
    and whether a copy went to the server's Sent folder (and if not, why). To answer a
    message in its thread, use ``/messages/{id}/reply`` or ``/forward``."""
    user = current_user(request)
    return _send(
        user,
        draft_of(user, payload),
        payload.record,
        track=payload.track,
        template_id=payload.template_id,
    )


def draft_of(user: User, payload: SendIn) -> Draft:
    """The message ``payload`` asks for (a template filled, when it names one); 422 as the
    fields are wrong, 404 for a record the caller may not see."""
    subject, text, html = payload.subject, payload.text, payload.html
    if payload.template_id is not None:
        subject, text = _from_template(user, payload, _visible_record(user, payload.record))
    elif subject is None:
        raise Invalid.one("subject", "Give a subject, or a template_id to take it from.")
    return Draft(
        sender=payload.sender,
        reply_to=payload.reply_to,
        to=payload.to,
        cc=payload.cc,
        bcc=payload.bcc,
        subject=subject,
        text=text,
        html=html,
        in_reply_to=payload.in_reply_to,
        references=[payload.in_reply_to] if payload.in_reply_to else [],
    )


def _start(request: HttpRequest, id: int, mode: replies.Mode) -> tuple[User, replies.Start]:
    user, message = _visible_message(request, id)
    try:
        return user, replies.start(user, message, mode)
    except replies.NotReadable as exc:
        raise HttpError(409, str(exc)) from None


def _answer_text(text: str, original: str) -> str:
    return f"{text.rstrip()}\n\n{original}" if text.strip() else original


def _answer(text: str, html: str, start: replies.Start, with_quote: bool = True) -> tuple[str, str]:
    """The text and HTML of an answer: what the caller wrote, then (``with_quote``) the
    original: quoted in the text part, in a blockquote in the HTML. Without ``html`` the
    answer is plain text; without ``text`` its text is that of the HTML."""
    if not html.strip():
        return (_answer_text(text, start.text) if with_quote else text), ""
    mine = text if text.strip() else text_alternative(html)
    if not with_quote:
        return mine, html
    # Cleaned on its own first, so nothing left open in it can swallow the quote.
    return _answer_text(mine, start.text), f"{safe_html(html)}\n{start.html}"


@router.post(
    "/{id}/reply",
    response={201: SentOut},
    openapi_extra=SEND_ERRORS,
    summary="Reply to a message",
)
def reply(request: HttpRequest, id: Id, payload: ReplyIn) -> dict[str, Any]:
    """Answer a message you may see (404 otherwise) in its thread: to its Reply-To (else
    its From), and with ``all`` to its To and Cc as well, less your own addresses; the
    subject gets ``Re:`` once; In-Reply-To and References are set (RFC 5322 §3.6.4); your
    text comes first, the original quoted below. With ``html`` the answer is
    multipart/alternative: your HTML, cleaned, with the original in a blockquote, beside
    the text part (``text``, else the text of your HTML, with the quote). It is sent from
    your mailbox that received the message (else your active one), as the address it was
    sent to, and recorded on the records the original is on that you may see."""
    user, start = _start(request, id, "all" if payload.all else "reply")
    text, html = _answer(payload.text, payload.html, start, payload.quote)
    draft = Draft(
        sender=start.sender,
        to=start.to,
        cc=[*start.cc, *payload.cc],
        bcc=payload.bcc,
        subject=start.subject,
        text=text,
        html=html,
        in_reply_to=start.in_reply_to,
        references=start.references,
    )
    return _send(user, draft, payload.record, start, track=payload.track)


@router.post(
    "/{id}/forward",
    response={201: SentOut},
    openapi_extra=SEND_ERRORS,
    summary="Forward a message",
)
def forward(request: HttpRequest, id: Id, payload: ForwardIn) -> dict[str, Any]:
    """Forward a message you may see (404 otherwise) to ``to``: the subject gets ``Fwd:``
    once, your text comes first and the original below it with its headers, and the
    original's attachments are attached; ``html`` works as for a reply. Threaded, sent and
    recorded as a reply is."""
    user, start = _start(request, id, "forward")
    if start.mailbox is not None:
        carried = sum(a.size for a in start.attachments)
        if carried > message_limit(start.mailbox):
            raise Invalid.one(
                "id",
                f"The attachments come to {filesizeformat(carried)}, more than "
                f"{filesizeformat(message_limit(start.mailbox))} a message.",
            )
    text, html = _answer(payload.text, payload.html, start)
    draft = Draft(
        sender=start.sender,
        to=payload.to,
        cc=payload.cc,
        bcc=payload.bcc,
        subject=start.subject,
        text=text,
        html=html,
        in_reply_to=start.in_reply_to,
        references=start.references,
        attachments=replies.forwarded_files(start.original, start.attachments),
    )
    return _send(user, draft, payload.record, start, track=payload.track)


# --------------------------------------------------------------------------- reading


def _page_url(request: HttpRequest, message_id: int) -> str:
    return request.build_absolute_uri(reverse("web:message", args=[message_id]))


def _page_urls(request: HttpRequest) -> Callable[[int], str]:
    """``_page_url`` for many messages, the address reversed once."""
    before, _, after = _page_url(request, 0).rpartition("/0/")
    return lambda message_id: f"{before}/{message_id}/{after}"


def _link_out(reason: emails.LinkReason) -> dict[str, Any]:
    return {
        "module": reason.module,
        "record_id": reason.record_id,
        "reason": reason.reason,
        "address": reason.address,
        "explanation": reason.explanation,
    }


def record_emails_page(
    request: HttpRequest, user: User, module: str, record_id: int, filters: EmailFilters
) -> dict[str, Any]:
    """One page of a record's Emails list (the record is one the caller may see), with
    the live mail of mailboxes that keep no copy when the view asks them (``live_mail``)."""
    try:
        emails.check_view(filters.view, filters.user)
    except emails.BadView as exc:
        raise Invalid.one(exc.field, str(exc)) from None
    qs = emails.record_emails(user, module, record_id, filters.view, filters.user, filters.tag)
    wanted = filter_of(filters)
    qs = intelligence.narrowed(user, qs, wanted)
    page_url = _page_urls(request)

    def items(rows: list[Message]) -> list[dict[str, Any]]:
        found = emails.extras(module, record_id, [m.pk for m in rows], recipients=True)
        return attach(
            user,
            [
                {
                    "id": m.pk,
                    "subject": m.subject,
                    "from": {"name": m.from_name, "address": m.from_address},
                    "to": found.to.get(m.pk, []),
                    "date": m.date,
                    "snippet": m.snippet,
                    "thread_id": m.thread_id,
                    "has_attachments": m.has_attachments,
                    "automated": m.automated,
                    "list_id": m.list_id,
                    "links": [_link_out(r) for r in found.reasons.get(m.pk, [])],
                    "tags": found.tags.get(m.pk, []),
                    "url": page_url(m.pk),
                }
                for m in rows
            ],
        )

    # Live mail has no intelligence: a list filtered by it shows stored mail only.
    mailboxes = (
        []
        if wanted
        else live_emails.mailboxes_for(
            user, module, record_id, filters.view, filters.user, filters.tag
        )
    )
    if mailboxes:
        return live_mail.mixed_page(request, user, module, record_id, filters, qs, mailboxes, items)
    if filters.cursor:
        raise Invalid.one("cursor", "This list has no live mail: page it with offset.")
    result = counted_page(qs, filters)
    result["items"] = items(result["items"])
    return result


def _visible_links(user: User, message: Message) -> list[Link]:
    """The message's links to records ``user`` may view (one query per module linked)."""
    links = list(Link.objects.filter(message=message).order_by("module", "record_id", "pk"))
    allowed: set[tuple[str, int]] = set()
    for module in {link.module for link in links}:
        ids = {link.record_id for link in links if link.module == module}
        visible = access.visible(user, RECORD_MODELS[module]).filter(pk__in=ids)
        allowed |= {(module, pk) for pk in visible.values_list("pk", flat=True)}
    return [link for link in links if (link.module, link.record_id) in allowed]


def _parsed(message: Message) -> tuple[bytes, ParsedMessage | None]:
    raw = raw_bytes(message)
    if message.parse_state == ParseState.FAILED:
        return raw, None
    try:
        return raw, parse_message(raw)
    except Unparseable:
        return raw, None
    except Exception as exc:  # never a 500 on a message; the type only (no bodies in logs)
        log.warning("message %s: %s while reading it for the API", message.pk, type(exc).__name__)
        return raw, None


def _people(parsed: ParsedMessage, role: str) -> list[dict[str, str]]:
    return [{"name": p.name, "address": p.address} for p in parsed.participants if p.role == role]


def _visible_message(request: HttpRequest, id: int) -> tuple[User, Message]:
    user = current_user(request)
    message = Message.objects.defer("body_text").filter(pk=id).first()
    if message is None or not may_see_message(user, message):
        raise Http404
    return user, message


@router.get(
    "/{id}",
    response={200: MessageOut},
    openapi_extra=READ_ERRORS,
    by_alias=True,
    summary="Read a message",
)
def read_message(request: HttpRequest, id: Id) -> dict[str, Any]:
    """A message you may see: headers, text, cleaned HTML (remote images removed),
    attachments with their download addresses, the records you may see it on and why,
    its page in crmail, and `seen`, `flagged` and `folders` as your own mailbox holds it
    (null and empty when you hold no copy). Opening it is recorded in the audit log; it
    does not mark it read (the message page does, for a person reading it)."""
    user, message = _visible_message(request, id)
    record_open(user, message)
    _, parsed = _parsed(message)
    links = _visible_links(user, message)
    reasons = emails.reasons_for(links, None).get(message.pk, [])
    base = _state(user, message) | {
        "thread_id": message.thread_id,
        "automated": message.automated,
        "list_id": message.list_id,
        "links": [_link_out(r) for r in reasons],
        "tags": tags.tags_of([message.pk]).get(message.pk, []),
        "sources": sorted(set(message.sends.values_list("source", flat=True))),
        "url": _page_url(request, message.pk),
        "body_waits": body_waits(message),
        "intelligence": intelligence.for_message(user, message.pk),
    }
    if parsed is None:
        empty: list[dict[str, str]] = []
        headers = {
            "subject": message.subject,
            "date": message.date,
            "from": [{"name": message.from_name, "address": message.from_address}],
            "to": empty,
            "cc": empty,
            "bcc": empty,
            "reply_to": empty,
            "message_id": message.message_id,
            "in_reply_to": message.in_reply_to,
            "references": message.references.split(),
        }
        return base | {
            "headers": headers,
            "text": "",
            "html": "",
            "attachments": [],
            "readable": False,
        }

    inline_parts = {
        a.content_id.lower(): a
        for a in parsed.attachments
        if a.content_id and a.content_type in INLINE_IMAGE_TYPES
    }

    def inline_url(content_id: str) -> str | None:
        part = inline_parts.get(content_id.lower())
        if part is None:
            return None
        url = reverse("web:message_inline", args=[message.pk, part.part])
        token = quote(inline_token(message.pk, part.part, user.pk))
        return request.build_absolute_uri(f"{url}?s={token}")

    html = clean_html(parsed.html, inline_url=inline_url).html if parsed.html.strip() else ""
    headers = {
        "subject": parsed.subject or message.subject,
        "date": parsed.date or message.date,
        "from": _people(parsed, "from"),
        "to": _people(parsed, "to"),
        "cc": _people(parsed, "cc"),
        "bcc": _people(parsed, "bcc"),
        "reply_to": _people(parsed, "reply-to"),
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": parsed.references,
    }
    attachments = [
        {
            "part": a.part,
            "name": a.filename or f"part {a.part}",
            "content_type": a.content_type,
            "size": a.size,
            "inline": a.inline,
            "download_url": request.build_absolute_uri(
                reverse("api:message_attachment", args=[message.pk, a.part])
            ),
        }
        for a in parsed.attachments
    ]
    return base | {
        "headers": headers,
        "text": parsed.text,
        "html": html,
        "attachments": attachments,
        "readable": True,
    }


@router.get(
    "/{id}/attachments/{part}",
    response={200: None},
    openapi_extra=READ_ERRORS,
    summary="Download an attachment",
    url_name="message_attachment",
)
def download_attachment(request: HttpRequest, id: Id, part: int) -> HttpResponse:
    """The part's bytes, as an attachment; a type that a browser could run is sent as
    application/octet-stream. Recorded in the audit log like opening the message."""
    user, message = _visible_message(request, id)
    raw, parsed = _parsed(message)
    response = attachment_response(raw, parsed, part)
    record_open(user, message)
    return response


# --------------------------------------------------------------------------- deals

DEAL_LINK_ERRORS = errors_doc(400, 401, 403, 404, 409, 422)


class DealLinkIn(Input):
    deal_id: Id = Field(description="A deal you may edit.")


class DealMoveIn(Input):
    to_deal_id: Id = Field(description="The deal to move the link to; one you may edit.")


class DealLinkOut(LinkOut):
    """A message's link to a deal, and why it is there."""

    deal_name: str


def _deal_link_out(message: Message, deal: Deal) -> dict[str, Any]:
    """The manual link of ``message`` on ``deal``, explained."""
    link = Link.objects.get(
        message=message, module=Module.DEALS, record_id=deal.pk, reason=Reason.MANUAL, address=""
    )
    [reason] = emails.reasons_for([link], Module.DEALS)[message.pk]
    return _link_out(reason) | {"deal_name": deal.name}


def _path_deal(user: User, deal_id: int) -> Deal:
    try:
        return deal_links.visible_deal(user, deal_id)
    except deal_links.NoSuchDeal:
        raise Http404 from None


def _body_deal(user: User, deal_id: int, field: str) -> Deal:
    try:
        return deal_links.visible_deal(user, deal_id)
    except deal_links.NoSuchDeal:
        raise Invalid.one(field, f"There is no deal {deal_id} that you may see.") from None


@router.post(
    "/{id}/deals",
    response={201: DealLinkOut},
    openapi_extra=DEAL_LINK_ERRORS,
    summary="Link a message to a deal",
)
def link_deal(request: HttpRequest, id: Id, payload: DealLinkIn) -> dict[str, Any]:
    """Link a message you may see to a deal you may edit (synced mail is never linked to a
    deal by itself). The link's reason is `manual`; its `explanation` says who linked it and
    when ("linked by …"). Answers 404 for a message you may not see, 422 naming `deal_id`
    for a deal that does not exist or that you may not see, or when the message is on that
    deal already (for any reason), and 403 for a deal you may see but not edit."""
    user, message = _visible_message(request, id)
    deal = _body_deal(user, payload.deal_id, "deal_id")
    try:
        deal_links.link(user, message, deal)
    except AlreadyLinked as exc:
        raise Invalid.one("deal_id", str(exc)) from None
    return _deal_link_out(message, deal)


@router.delete(
    "/{id}/deals/{deal_id}",
    response={204: None},
    openapi_extra=DEAL_LINK_ERRORS,
    summary="Unlink a message from a deal",
)
def unlink_deal(request: HttpRequest, id: Id, deal_id: Id) -> None:
    """Take a message off a deal you may edit: removes the links a user can take back
    (reason `manual`, `bcc_dropbox` or `thread`). Mail sent from the deal in crmail
    (reason `sent_from_record`) stays on it, as the record of what was sent from there:
    when that is its only link to the deal the answer is 409, and when it has both, the
    other links go and the message stays on the deal for that reason. Answers 404 for a
    message or deal you may not see, or when the message is not on the deal, and 403 for
    a deal you may see but not edit."""
    user, message = _visible_message(request, id)
    deal = _path_deal(user, deal_id)
    try:
        deal_links.unlink(user, message, deal)
    except NotLinked:
        raise Http404 from None
    except StaysLinked as exc:
        raise HttpError(409, str(exc)) from None
    return None


@router.post(
    "/{id}/deals/{deal_id}/move",
    response={200: DealLinkOut},
    openapi_extra=DEAL_LINK_ERRORS,
    summary="Move a message's link to another deal",
)
def move_deal(request: HttpRequest, id: Id, deal_id: Id, payload: DealMoveIn) -> dict[str, Any]:
    """Move a message from deal `deal_id` to deal `to_deal_id` (you must be able to edit
    both): its `manual`, `bcc_dropbox` and `thread` links to the first deal go, and it
    gets your `manual` link to the second, which is returned. Mail sent from the first deal
    in crmail stays linked there: with no other link, 409 (link it to the second deal as
    well instead). Answers 404 for a message or `deal_id` you may not see or a message not
    on `deal_id`; 422 naming `to_deal_id` for a deal that does not exist or you may not
    see, the same deal, or a deal the message is on already; 403 for a deal you may see but
    not edit."""
    user, message = _visible_message(request, id)
    from_deal = _path_deal(user, deal_id)
    to_deal = _body_deal(user, payload.to_deal_id, "to_deal_id")
    try:
        deal_links.move(user, message, from_deal, to_deal)
    except (SameDeal, AlreadyLinked) as exc:
        raise Invalid.one("to_deal_id", str(exc)) from None
    except NotLinked:
        raise Http404 from None
    except LinkError as exc:  # sent from the deal (StaysLinked), or changed meanwhile
        raise HttpError(409, str(exc)) from None
    return _deal_link_out(message, to_deal)


# --------------------------------------------------------------------------- two-way

TWOWAY_ERRORS = errors_doc(400, 401, 404, 409, 422, 502)
NO_COPY = (
    "This message is not in a mailbox of yours (you see it through a colleague's sharing, "
    "or it was only sent from crmail): only its owner can change it."
)


class MessageFlagsIn(Input):
    seen: StrictBool | None = Field(None, description="true: mark read; false: mark unread.")
    flagged: StrictBool | None = Field(None, description="true: flag; false: unflag.")

    @model_validator(mode="after")
    def _something(self) -> MessageFlagsIn:
        if self.seen is None and self.flagged is None:
            raise ValueError("Give seen, flagged or both.")
        return self


class MessageMoveIn(Input):
    folder_id: Id = Field(description="A folder of the mailbox that holds your copy.")


def _state(user: User, message: Message) -> dict[str, Any]:
    """``id``, ``seen``, ``flagged`` and ``folders`` as ``user``'s own copies hold it."""
    copy = twoway.own_copy(user, message)
    copies = twoway.own_copies(user, message).select_related("folder")
    folders: dict[int, dict[str, Any]] = {}
    for location in copies.order_by("folder__name", "folder_id"):
        folder = location.folder
        folders.setdefault(
            folder.pk,
            {
                "id": folder.pk,
                "name": folder.name,
                "role": folder.role,
                "mailbox_id": folder.mailbox_id,
            },
        )
    return {
        "id": message.pk,
        "seen": copy.seen if copy else None,
        "flagged": copy.flagged if copy else None,
        "folders": list(folders.values()),
    }


def _own_copy(request: HttpRequest, id: int) -> tuple[User, Message, Location]:
    user, message = _visible_message(request, id)
    copy = twoway.own_copy(user, message)
    if copy is None:
        raise HttpError(409, NO_COPY)
    return user, message, copy


@contextmanager
def _twoway_errors() -> Iterator[None]:
    """A two-way change's refusals as API answers: 409 for a one-way (POP3) copy, 422
    naming ``folder_id`` for a folder not in the copy's mailbox, 502 when the server
    refuses or cannot be reached (nothing changed on either side)."""
    try:
        yield
    except twoway.OneWay as exc:
        raise HttpError(409, str(exc)) from None
    except twoway.BadFolder as exc:
        raise Invalid.one("folder_id", str(exc)) from None
    except twoway.Refused as exc:
        raise HttpError(502, str(exc)) from None


@router.patch(
    "/{id}",
    response={200: MessageStateOut},
    openapi_extra=TWOWAY_ERRORS,
    summary="Mark a message read or unread, flag or unflag it",
)
def change_message(request: HttpRequest, id: Id, payload: MessageFlagsIn) -> dict[str, Any]:
    """Change `seen` and `flagged` on your own copy, on the mail server first. Answers 404
    for a message you may not see, 409 when you hold no copy of it, 422 when neither field
    is given, and 502 when the server refuses or cannot be reached (nothing changed)."""
    user, message, copy = _own_copy(request, id)
    with _twoway_errors():
        if payload.seen is not None:
            twoway.set_seen(user, copy, payload.seen)
        if payload.flagged is not None:
            twoway.set_flagged(user, copy, payload.flagged)
    return _state(user, message)


@router.post(
    "/{id}/move",
    response={200: MessageStateOut},
    openapi_extra=TWOWAY_ERRORS,
    summary="Move a message to another folder",
)
def move_message(request: HttpRequest, id: Id, payload: MessageMoveIn) -> dict[str, Any]:
    """Move your own copy to `folder_id`, a folder of the same mailbox (see
    `GET /mailboxes/{id}/folders`), on the mail server first. Answers 404 for a message you
    may not see, 409 when you hold no copy of it or it is in a POP3 mailbox (one-way),
    422 naming `folder_id` for a folder not
    in that mailbox or gone from the server, and 502 when the server refuses (for instance
    the folder was deleted there meanwhile) or cannot be reached: nothing changed."""
    user, message, copy = _own_copy(request, id)
    with _twoway_errors():
        twoway.move(user, copy, payload.folder_id)
    return _state(user, message)


@router.post(
    "/{id}/fetch-body",
    response={200: FetchedBodyOut},
    openapi_extra=errors_doc(401, 404, 422, 502),
    summary="Fetch the body of a message that waits for room",
)
def fetch_body(request: HttpRequest, id: Id) -> dict[str, Any]:
    """A message that arrived once the organisation's storage was full keeps its headers
    and waits for its body on the mail server (`body_waits` on the message). This fetches
    it at once, whatever room is left (SPEC F11), for anyone who may see the message.
    Answers 404 for a message you may not see, 502 (saying why) when the server cannot
    give it, and 200 with `body_waits` false when the message is whole, now or already."""
    _, message = _visible_message(request, id)
    done = bodies.fetch_now(message.pk)
    if done.problems and not done.stored:
        raise HttpError(502, "The body could not be fetched: " + " ".join(done.problems))
    words = "The whole message is here now." if done.stored else "The message is whole already."
    return {"body_waits": False, "message": words}


@router.delete(
    "/{id}",
    response={200: MessageStateOut},
    openapi_extra=TWOWAY_ERRORS,
    summary="Delete a message (to Trash; for good from Trash)",
)
def delete_message(request: HttpRequest, id: Id) -> dict[str, Any]:
    """Delete your own copy on the mail server first: it moves to the mailbox's Trash
    (`folders` then names it), or, when it is in Trash already, it is deleted for good
    (`folders` then lists the other copies you hold, if any). Answers 404 for a message
    you may not see, 409 when you hold no copy of it or it is in a POP3 mailbox (one-way:
    crmail keeps its copy), and 502 when the server refuses or
    cannot be reached: nothing changed."""
    user, message, copy = _own_copy(request, id)
    with _twoway_errors():
        twoway.delete(user, copy)
    return _state(user, message)
