"""Building real messages for linking tests: raw bytes, stored and parsed as sync does."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from crmail.linking.links import link_messages
from crmail.mail.ingest import parse_stored
from crmail.mail.models import Message
from crmail.mail.store import store_many

_seq = itertools.count(1)


def raw_mail(
    sender: str = "someone@elsewhere.test",
    to: Iterable[str] = (),
    cc: Iterable[str] = (),
    bcc: Iterable[str] = (),
    *,
    reply_to: str = "",
    sender_header: str = "",
    subject: str = "Hello",
    day: int = 1,
    headers: Iterable[str] = (),
) -> bytes:
    n = next(_seq)
    lines = [f"From: {sender}"]
    for name, addresses in (("To", to), ("Cc", cc), ("Bcc", bcc)):
        addresses = list(addresses)
        if addresses:
            lines.append(f"{name}: {', '.join(addresses)}")
    if reply_to:
        lines.append(f"Reply-To: {reply_to}")
    if sender_header:
        lines.append(f"Sender: {sender_header}")
    lines += [
        f"Subject: {subject} {n}",
        f"Date: Mon, {day:02d} Jun 2026 10:{n % 60:02d}:00 +0000",
        f"Message-ID: <m{n}@linking.test>",
        *headers,
        "",
        f"Body {n}.",
        "",
    ]
    return "\r\n".join(lines).encode()


def ingest(*raws: bytes, link: bool = True) -> list[Message]:
    """Store and parse like the sync path, then link (as the sync path will call it)."""
    messages = store_many(raws)
    parse_stored(messages)
    if link:
        link_messages([m.pk for m in messages])
    return messages
