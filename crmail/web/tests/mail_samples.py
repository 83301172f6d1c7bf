"""Messages for the message page tests: real MIME built with the standard library, stored
raw and parsed like synced mail, lying in a user's mailbox."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from crmail.mail.ingest import parse_stored
from crmail.mail.models import Message
from crmail.mail.store import store_raw
from crmail.mailboxes.models import Folder, Location, Mailbox
from crmail.people.models import User


def png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (37, 87, 214)) -> bytes:
    """A real PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\0\0\0")
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


PNG = png()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def html_message(
    html: str,
    *,
    subject: str = "Quarterly offer",
    text: str | None = "Plain version",
    inline_png: bytes | None = PNG,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    cc: str = "Carl <carl@client.example>",
) -> bytes:
    """multipart/mixed( multipart/related( alternative(text, html), logo.png ), files… )."""
    msg = EmailMessage()
    msg["From"] = "Ada Sender <ada@vendor.example>"
    msg["To"] = "Rex Rep <rep@crmail.test>"
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    msg["Message-ID"] = f"<{abs(hash((html, subject)))}@vendor.example>"
    if text is not None:
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        html_part = msg.get_payload()[1]
    else:
        msg.set_content(html, subtype="html")
        html_part = msg
    if inline_png is not None:
        html_part.add_related(inline_png, "image", "png", cid="<logo@vendor.example>")
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def text_message(text: str, *, subject: str = "Plain note") -> bytes:
    msg = EmailMessage()
    msg["From"] = "ada@vendor.example"
    msg["To"] = "rep@crmail.test"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    msg.set_content(text)
    return msg.as_bytes()


def deliver(owner: User, raw: bytes, *, parse: bool = True) -> Message:
    """``raw`` stored and lying in the Inbox of ``owner``'s mailbox, parsed like synced mail."""
    mailbox = Mailbox.objects.filter(owner=owner).first() or Mailbox.objects.create(
        owner=owner, email=owner.email, host="127.0.0.1", port=993, login=owner.email
    )
    folder, _ = Folder.objects.get_or_create(
        mailbox=mailbox, remote_id="INBOX", defaults={"name": "INBOX", "role": "inbox"}
    )
    message = store_raw(raw)
    Location.objects.create(
        mailbox=mailbox, folder=folder, message=message, remote_id=str(message.pk), uid=message.pk
    )
    if parse:
        parse_stored([message])
        message.refresh_from_db()
    return message
