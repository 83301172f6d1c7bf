"""The MIME crmail hands Microsoft Graph to send (decision 041): pure functions on bytes.

Graph takes a message's recipients from its headers, so envelope recipients the headers do
not name (Bcc) go into a Bcc header (``with_bcc``). A request to Graph carries at most 4 MB,
and MIME goes as base64, a third larger: a message past that is sent as a draft without
the attachments that make it too large, each of those added to the draft apart
(``split_large``): in one request under 3 MB, through an upload session of up to 150 MB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import getaddresses

from crmail.mail.parse import AttachmentInfo, detach, parse_message
from crmail.mailboxes.drivers.base import DriverError

SEND_LIMIT = 4 * 1024 * 1024  # Graph's request size limit; base64 makes MIME a third larger
# A file attached in one request: its base64 and the JSON around it within the limit ("under
# 3 MB"); a larger one goes through an upload session, of up to 150 MB.
SMALL_ATTACHMENT = (SEND_LIMIT - 4096) * 3 // 4
ATTACHMENT_LIMIT = 150 * 1000 * 1000
# A PUT of an upload session: under the 4 MB Outlook's documents ask for, and a multiple of
# 320 KiB, which Graph requires of OneDrive's upload sessions (Outlook's documents name none).
UPLOAD_CHUNK = 12 * 320 * 1024


@dataclass(frozen=True)
class Part:
    """An attachment sent apart from its message's MIME."""

    name: str
    content_type: str
    data: bytes
    inline: bool
    content_id: str  # without <>; "" for none


def base64_size(n: int) -> int:
    """How long ``n`` bytes are in base64 (no line breaks)."""
    return (n + 2) // 3 * 4


def split_large(mime: bytes) -> tuple[bytes, list[Part]]:
    """``mime`` without the attachments that make it too large for one request (the
    largest first), and those attachments in their order in the message. ``too_large``
    when an attachment is past what Graph takes, or what is left is still too large."""
    found = sorted(parse_message(mime).attachments, key=lambda a: a.size, reverse=True)
    for a in found:
        if a.size > ATTACHMENT_LIMIT:
            raise DriverError(
                "Microsoft Graph takes attachments of up to 150 MB: "
                f"{a.filename or 'an attachment'} is larger.",
                kind="too_large",
            )
    chosen: list[AttachmentInfo] = []
    taken: dict[int, bytes] = {}
    slim = mime
    while base64_size(len(slim)) > SEND_LIMIT:
        rest = found[len(chosen) :]
        if not rest:
            raise DriverError(
                "Microsoft Graph takes up to about 3 MB of a message besides its "
                "attachments: shorten its text.",
                kind="too_large",
            )
        # Enough of the largest left to fit by the estimate (an attachment in the MIME is
        # base64 in 76-character lines, and the MIME goes as base64 again), at least one.
        excess = base64_size(len(slim)) - SEND_LIMIT
        for a in rest:
            chosen.append(a)
            excess -= a.size * 4 // 3 * 78 // 76 * 4 // 3
            if excess <= 0:
                break
        slim, taken = detach(mime, [a.part for a in chosen])
    return slim, [
        Part(
            a.filename or "attachment",
            a.content_type or "application/octet-stream",
            taken[a.part],
            a.inline,
            a.content_id,
        )
        for a in sorted(chosen, key=lambda a: a.part)
        if a.part in taken
    ]


def with_bcc(raw: bytes, recipients: Sequence[str]) -> bytes:
    """The MIME Graph sends: its recipients are the headers', so envelope recipients
    missing from To and Cc (Bcc) are added as a Bcc header, which Outlook keeps only in
    the sender's copy."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    lines = head.decode("ascii", "replace").replace("\r\n", "\n").split("\n")
    fields: dict[str, list[str]] = {}
    name = ""
    for line in lines:
        if line[:1] in (" ", "\t") and name:
            fields[name][-1] += line
        elif ":" in line:
            name = line.split(":", 1)[0].strip().lower()
            fields.setdefault(name, []).append(line.split(":", 1)[1])
    shown = {a.lower() for _, a in getaddresses(fields.get("to", []) + fields.get("cc", [])) if a}
    hidden = [r for r in recipients if r.lower() not in shown]
    for r in hidden:
        if any(c in r for c in '\r\n,<>"') or "@" not in r:
            raise DriverError(f"{r!r} is not an address crmail can send to.", kind="refused")
    if not hidden:
        return raw
    newline = b"\r\n" if b"\r\n" in head else b"\n"
    return head + newline + b"Bcc: " + ", ".join(hidden).encode("ascii") + sep + body
