"""Real messages for search tests: stored and parsed as a sync stores and parses them, so
the index is fed the way it is in use (after the parse results commit)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from contextlib import nullcontext
from email.message import EmailMessage
from email.utils import format_datetime

from crmail.crm.models import Record
from crmail.mail.ingest import parse_stored
from crmail.mail.models import Message
from crmail.mail.store import store_raw
from crmail.mailboxes.models import Mailbox
from crmail.people.models import User
from crmail.sharing.tests.build import START, link, place

_seq = itertools.count(1)


def raw(
    sender: str,
    to: str,
    subject: str,
    body: str,
    *,
    day: int = 0,
    attachment: str | None = None,
    reply_to: str | None = None,
) -> bytes:
    from datetime import timedelta

    n = next(_seq)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<search-{n}@crmail.test>"
    if reply_to:
        msg["In-Reply-To"] = reply_to
        msg["References"] = reply_to
    msg["Date"] = format_datetime(START + timedelta(days=day, minutes=n))
    msg.set_content(body)
    if attachment:
        msg.add_attachment(
            b"%PDF-1.4 data", maintype="application", subtype="pdf", filename=attachment
        )
    return msg.as_bytes()


def deliver(
    capture,  # type: ignore[no-untyped-def]  (django_capture_on_commit_callbacks, or None)
    data: bytes,
    *,
    to: Iterable[Mailbox | User] = (),
    on: Iterable[Record] = (),
) -> Message:
    """Store and parse ``data`` (the index is fed on commit), place it, link it. Without
    ``capture`` (a test whose transactions commit) the commit itself feeds the index."""
    with capture(execute=True) if capture is not None else nullcontext():
        message = store_raw(data)
        parse_stored([message])
    message.refresh_from_db()
    for box in to:
        place(message, box)
    for record in on:
        link(message, record)
    return message
