"""Reply, reply all and forward (SPEC F3): a new message started from one the user holds.

``start(user, message, mode)`` reads the original from its stored raw bytes and gives what
the composer starts with: recipients (reply: Reply-To, else From; reply all: those plus To
and Cc, less the user's own addresses), the subject with ``Re:`` or ``Fwd:`` once, the
threading headers (RFC 5322 §3.6.4: In-Reply-To is the original's Message-ID, References
its References, else its In-Reply-To, followed by its Message-ID), the original quoted
below, and the mailbox to send from (the user's own mailbox holding the message, else
their active one). A forward carries the original's attachments, read again from the
raw bytes when the message is sent (``forwarded_files``), never from the browser.

The caller has checked that the user may see the message (``sharing.visibility``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from django.utils import timezone

from crmail.mail.compose import text_html
from crmail.mail.display import html_to_text
from crmail.mail.models import Message, ParseState
from crmail.mail.parse import AttachmentInfo, ParsedMessage, Unparseable, parse_message, part_bytes
from crmail.mail.store import raw_bytes
from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.sending import from_addresses
from crmail.orgaddresses import queries as org_addresses
from crmail.people.models import User

Mode = Literal["reply", "all", "forward"]
MODES: tuple[Mode, ...] = ("reply", "all", "forward")

# Prefixes mail programs put before a subject, in several languages, any number of times:
# "Re: RE: Fwd: AW: subject" answered is "Re: subject".
_PREFIX = re.compile(
    r"^(?:\s*(?:re|fwd?|aw|wg|sv|vs|rif|tr|antw|doorst)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
FORWARD_LINE = "---------- Forwarded message ----------"


@dataclass
class Start:
    """What a reply or forward starts as."""

    mode: Mode
    original: Message
    subject: str
    to: list[str]
    cc: list[str]
    text: str  # the original, quoted (reply) or shown under a header block (forward)
    html: str  # the same for a message written in HTML: the original in a blockquote
    in_reply_to: str
    references: list[str]
    mailbox: Mailbox | None  # the user's mailbox to send from; None: they have none
    sender: str  # the address to send as: the one the original was sent to, when it may
    attachments: list[AttachmentInfo] = field(default_factory=list)  # carried on forward


def subject_for(mode: Mode, subject: str) -> str:
    """``Re: subject`` or ``Fwd: subject``: every earlier prefix dropped, one added."""
    bare = _PREFIX.sub("", subject).strip()
    return f"{'Fwd' if mode == 'forward' else 'Re'}: {bare}"


def references_for(parsed: ParsedMessage) -> list[str]:
    """The References of an answer (RFC 5322 §3.6.4): the parent's References (else its
    In-Reply-To), then the parent's Message-ID; without angle brackets, each once."""
    chain = list(parsed.references) or ([parsed.in_reply_to] if parsed.in_reply_to else [])
    if parsed.message_id:
        chain.append(parsed.message_id)
    return list(dict.fromkeys(r.strip("<> ") for r in chain if r.strip("<> ")))


def plain_text(parsed: ParsedMessage) -> str:
    """The original's text: its text part, else its HTML without tags."""
    if parsed.text.strip():
        return parsed.text
    return html_to_text(parsed.html) if parsed.html.strip() else ""


def _when(date: datetime | None) -> str:
    return timezone.localtime(date).strftime("%-d %b %Y") if date else ""


def _who(parsed: ParsedMessage, role: str) -> str:
    return ", ".join(
        f"{p.name} <{p.address}>" if p.name else p.address
        for p in parsed.participants
        if p.role == role
    )


def _intro(parsed: ParsedMessage) -> str:
    """ "On 3 Dec 2026, Ada wrote:" """
    sender = next((p for p in parsed.participants if p.role == "from"), None)
    name = (sender.name or sender.address) if sender else "the sender"
    when = _when(parsed.date)
    return f"On {when}, {name} wrote:" if when else f"{name} wrote:"


def quoted(parsed: ParsedMessage) -> str:
    """ "On 3 Dec 2026, Ada wrote:" and the original's lines, each under ``> ``."""
    lines = plain_text(parsed).rstrip().splitlines() or [""]
    return _intro(parsed) + "\n" + "\n".join(f"> {line}" if line else ">" for line in lines) + "\n"


def quoted_html(parsed: ParsedMessage) -> str:
    """The "On …, Ada wrote:" line and the original's text in a ``<blockquote>``."""
    return (
        f"<div>{text_html(_intro(parsed))}</div>"
        f"<blockquote>{text_html(plain_text(parsed).rstrip())}</blockquote>"
    )


def forwarded_html(parsed: ParsedMessage) -> str:
    """The forwarded block (``forwarded``) in a ``<blockquote>``."""
    return f"<blockquote>{text_html(forwarded(parsed).rstrip())}</blockquote>"


def forwarded(parsed: ParsedMessage) -> str:
    """The original under a header block, as mail programs forward inline."""
    head = [FORWARD_LINE, f"From: {_who(parsed, 'from')}"]
    if parsed.date:
        head.append(f"Date: {timezone.localtime(parsed.date).strftime('%-d %b %Y, %H:%M')}")
    head.append(f"Subject: {parsed.subject}")
    head.append(f"To: {_who(parsed, 'to')}")
    if cc := _who(parsed, "cc"):
        head.append(f"Cc: {cc}")
    return "\n".join(head) + "\n\n" + plain_text(parsed).rstrip() + "\n"


def own_addresses(user: User) -> set[str]:
    """Every address that is the user's: their sign-in address and every mailbox's."""
    return own_addresses_of([user.pk])[user.pk]


def own_addresses_of(user_ids: Iterable[int]) -> dict[int, set[str]]:
    """Each user's own addresses, lower case: their sign-in address and every address
    their mailboxes send as (``from_addresses``: each mailbox's and its extra ones)."""
    ids = list(user_ids)
    own: dict[int, set[str]] = {pk: set() for pk in ids}
    for pk, email in User.objects.filter(pk__in=ids).values_list("pk", "email"):
        if email:
            own[pk].add(email.lower())
    for mailbox in Mailbox.objects.filter(owner_id__in=ids).only(
        "owner_id", "email", "extra_from_addresses"
    ):
        own[mailbox.owner_id].update(from_addresses(mailbox))
    return own


def _unique(addresses: Iterable[str], leave_out: set[str]) -> list[str]:
    out: list[str] = []
    for address in addresses:
        if address and address not in leave_out and address not in out:
            out.append(address)
    return out


def recipients(parsed: ParsedMessage, mode: Mode, own: set[str]) -> tuple[list[str], list[str]]:
    """To and Cc of an answer; a forward starts with none."""
    if mode == "forward":
        return [], []
    targets = parsed.addresses("reply-to") or parsed.addresses("from")
    if all(a in own for a in targets):  # answering one's own mail: to its recipients again
        targets = parsed.addresses("to")
    to = _unique(targets, own)
    if mode == "reply":
        return to, []
    to = _unique([*to, *parsed.addresses("to")], own)
    return to, _unique(parsed.addresses("cc"), own | set(to))


def sending_mailbox(user: User, message: Message) -> Mailbox | None:
    """The user's own mailbox holding ``message`` that can send, else their active one."""
    holding = (
        Mailbox.objects.filter(owner=user, locations__message=message)
        .exclude(smtp_host="")
        .order_by("-is_active", "pk")
        .first()
    )
    return holding or Mailbox.objects.filter(owner=user, is_active=True).first()


def _sender(user: User, mailbox: Mailbox | None, parsed: ParsedMessage) -> str:
    """The address an answer goes out as: the mailbox's address the original was sent to,
    else an organisation address it was sent to that ``user`` may send as (SPEC F16),
    else the mailbox's own."""
    if mailbox is None:
        return ""
    mine = from_addresses(mailbox)
    received = parsed.addresses("to", "cc")
    received_as = next((a for a in received if a in mine), "")
    if not received_as and received:
        shared = set(
            org_addresses.usable_by(user)
            .filter(address__in=received)
            .values_list("address", flat=True)
        )
        received_as = next((a for a in received if a in shared), "")
    return received_as or mine[0]


class NotReadable(Exception):
    """The original could not be read, so it cannot be answered from crmail."""


def read(message: Message) -> ParsedMessage:
    if message.parse_state == ParseState.FAILED:
        raise NotReadable("crmail could not read this message, so it cannot be answered here.")
    try:
        return parse_message(raw_bytes(message))
    except Unparseable:
        raise NotReadable(
            "crmail could not read this message, so it cannot be answered here."
        ) from None


def start(user: User, message: Message, mode: Mode) -> Start:
    """What replying to (``reply``, ``all``) or forwarding ``message`` starts as."""
    parsed = read(message)
    mailbox = sending_mailbox(user, message)
    sender = _sender(user, mailbox, parsed)
    # The organisation address answered from is not copied on its own answer.
    to, cc = recipients(parsed, mode, own_addresses(user) | {sender} - {""})
    return Start(
        mode=mode,
        original=message,
        subject=subject_for(mode, parsed.subject or message.subject),
        to=to,
        cc=cc,
        text=forwarded(parsed) if mode == "forward" else quoted(parsed),
        html=forwarded_html(parsed) if mode == "forward" else quoted_html(parsed),
        in_reply_to=parsed.message_id.strip("<> "),
        references=references_for(parsed),
        mailbox=mailbox,
        sender=sender,
        attachments=[a for a in parsed.attachments if not a.inline or a.filename]
        if mode == "forward"
        else [],
    )


def forwarded_files(
    message: Message, parts: Iterable[AttachmentInfo]
) -> list[tuple[str, str, bytes]]:
    """The bytes of the original's attachments ``parts``, for the forward's Draft."""
    raw = raw_bytes(message)
    files = []
    for info in parts:
        data, content_type, filename = part_bytes(raw, info.part)
        name = filename or info.filename or f"part {info.part}"
        # A name is a header parameter: a line break in a received one is not carried on.
        name = " ".join(name.replace("\x00", " ").split())
        files.append((name, content_type, data))
    return files
