"""A user's mail as one mbox file, written as a stream (SPEC F12: backing up departing users).

The format is mboxrd (RFC 4155, and the "mboxrd" variant described at
https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml): each message
starts with a ``From `` separator line — ``From <envelope sender> <asctime date>`` —
holds the message with its line ends as LF, and ends with an empty line. A line of the
message that matches ``^>*From `` gets one more ``>`` in front, so no message line can
be taken for a separator and a reader that removes one ``>`` gets the bytes back
exactly. Mail clients (mutt, Thunderbird, Apple Mail) and Python's ``mailbox.mbox``
read it.

What goes in is the caller's query (a user's mail: ``mailboxes.queries.user_mail``), in
its order. Messages that could not be parsed are in it too: the raw bytes are what
counts. Raw bytes are read a batch at a time, so memory stays flat whatever the size.
A message whose body waits (it arrived while storage was full: crmail holds its header
section only, the body is on the mail server) goes in as that header section with one
header before it, ``X-Crmail-Body-Waiting``, saying so, and is counted apart
(``Progress.without_body``): a backup never passes an empty body off as the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import QuerySet

from crmail.mail.models import Message, WaitingBody
from crmail.mail.store import raw_bytes_many
from crmail.people.models import User

# A batch of raw bytes read at once: this many messages, or fewer when they are large.
BATCH_MESSAGES = 200
BATCH_BYTES = 32 * 1024 * 1024

MAILER_DAEMON = "MAILER-DAEMON"
# Put before the header section of a message whose body crmail does not hold.
BODY_WAITING = (
    b"X-Crmail-Body-Waiting: the body of this message was not stored (the storage\n"
    b" quota was reached when it arrived); it is on the mail server only\n"
)
CONTENT_TYPE = "application/mbox"  # RFC 4155, section 2

# Quoting in mboxrd: a line of ">"s then "From " gets one more ">". Lines end in LF here.
_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)
# An envelope address on the separator line: printable ASCII without spaces.
_ENVELOPE = re.compile(r"[!-~]{1,254}")
# asctime's names, not the locale's.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Progress:
    """How far a backup has come, for a progress line."""

    messages: int
    bytes: int
    without_body: int = 0  # of ``messages``: those whose body waits on the mail server


def asctime(moment: datetime) -> str:
    """``moment`` in UTC as C's asctime writes it (``Mon Mar  2 09:30:00 2026``), the date
    form of the separator line (RFC 4155, section 2); English names whatever the locale."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (
        f"{_DAYS[utc.weekday()]} {_MONTHS[utc.month - 1]} {utc.day:2d} "
        f"{utc:%H:%M:%S} {utc.year:04d}"
    )


def envelope_sender(address: str) -> str:
    """The address for the separator line: the message's sender when it is one word of
    printable ASCII, else ``MAILER-DAEMON`` (as mail systems write for unknown senders)."""
    address = (address or "").strip()
    return address if _ENVELOPE.fullmatch(address) else MAILER_DAEMON


def separator(sender: str, moment: datetime) -> bytes:
    """The ``From `` line that starts a message in an mbox, with its LF."""
    return f"From {envelope_sender(sender)} {asctime(moment)}\n".encode("ascii")


def quote(raw: bytes) -> bytes:
    """``raw`` as an mboxrd entry's content: CRLF made LF, ``>*From `` lines quoted with one
    more ``>``, and ending with an LF of its own (the empty line comes after it)."""
    text = raw.replace(b"\r\n", b"\n")
    if b"From " in text:  # most messages have none: skip the regular expression
        text = _FROM_LINE.sub(rb">\1", text)
    if text and not text.endswith(b"\n"):
        text += b"\n"
    return text


def entry(raw: bytes, sender: str, moment: datetime) -> bytes:
    """One message as it stands in the mbox: separator, content, the empty line."""
    return separator(sender, moment) + quote(raw) + b"\n"


def _batches(messages: QuerySet[Message]) -> Iterator[list[Message]]:
    """``messages`` in batches of at most ``BATCH_MESSAGES`` or about ``BATCH_BYTES``."""
    batch: list[Message] = []
    size = 0
    for message in messages.iterator(chunk_size=BATCH_MESSAGES):
        batch.append(message)
        size += message.size
        if len(batch) >= BATCH_MESSAGES or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def write_mbox(
    messages: QuerySet[Message], on_progress: Callable[[Progress], None] | None = None
) -> Iterator[bytes]:
    """The mbox of ``messages`` in their order, one message's bytes at a time. The query
    needs load only ``size``, ``date``, ``first_seen_at`` and ``from_address``.

    ``on_progress``, when given, is called after each batch with the totals so far.
    """
    done = written = without_body = 0
    for batch in _batches(messages):
        waiting = set(
            WaitingBody.objects.filter(message_id__in=[m.pk for m in batch]).values_list(
                "message_id", flat=True
            )
        )
        for message, raw in zip(batch, raw_bytes_many(batch), strict=True):
            moment = message.date or message.first_seen_at
            if message.pk in waiting:
                raw = BODY_WAITING + raw
                without_body += 1
            chunk = entry(raw, message.from_address, moment)
            done += 1
            written += len(chunk)
            yield chunk
        if on_progress is not None:
            on_progress(Progress(messages=done, bytes=written, without_body=without_body))


def backup_filename(user: User) -> str:
    """``<email>-mail.mbox`` with anything but letters, digits and ``@._+-`` made ``_``."""
    safe = re.sub(r"[^A-Za-z0-9@._+-]", "_", user.email).strip(".") or f"user-{user.pk}"
    return f"{safe}-mail.mbox"
