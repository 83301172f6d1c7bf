"""Parsing raw mail into what crmail shows and links, without ever giving up on a message.

``parse_message(raw)`` always returns a ``ParsedMessage``. Real mail is messy (unknown
charsets, broken multiparts, 8-bit headers, malformed Message-IDs that make
``policy.default`` raise on a mere header read), so every field is read with a fallback,
and each fallback taken is written to ``problems``. Only a message whose structure cannot
be read at all raises ``Unparseable``; its raw bytes are kept all the same.

Pure functions on bytes, no I/O, no models: tested on real ``.eml`` files.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from crmail.mail.addresses import clean_address

ADDRESS_HEADERS = ("from", "sender", "reply-to", "to", "cc", "bcc")
MAX_TEXT = 1_000_000  # characters of text or HTML kept per message
_MSGID = re.compile(r"<([^<>\s]+)>")
_WS = re.compile(r"\s+")


class Unparseable(Exception):
    """The message's structure could not be read at all (its raw bytes are still kept)."""


@dataclass(frozen=True)
class Participant:
    role: str  # from, sender, reply-to, to, cc, bcc
    address: str  # normalised (lower case) when valid, else the raw text
    name: str
    valid: bool


@dataclass(frozen=True)
class AttachmentInfo:
    part: int  # the part's index in ``Message.walk()`` order; stable for the same bytes
    filename: str
    content_type: str
    size: int
    content_id: str
    inline: bool


@dataclass
class ParsedMessage:
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    participants: list[Participant] = field(default_factory=list)
    text: str = ""
    html: str = ""
    attachments: list[AttachmentInfo] = field(default_factory=list)
    list_id: str = ""
    automated: bool = False
    problems: list[str] = field(default_factory=list)

    def addresses(self, *roles: str) -> list[str]:
        """Valid addresses in the given roles (all roles when none given), in order, unique."""
        seen: list[str] = []
        for p in self.participants:
            if p.valid and (not roles or p.role in roles) and p.address not in seen:
                seen.append(p.address)
        return seen


def parse_message(raw: bytes) -> ParsedMessage:
    """Read headers, participants, dates, bodies and attachments from ``raw``."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser itself is lenient; this is rare and total
        raise Unparseable(f"{type(exc).__name__}: {exc}") from exc
    out = ParsedMessage()
    reader = _HeaderReader(msg, out.problems)
    out.subject = _WS.sub(" ", reader.text("subject")).strip()
    out.message_id = _first_msgid(reader.text("message-id"))
    out.in_reply_to = _first_msgid(reader.text("in-reply-to"))
    out.references = _all_msgids(reader.text("references"))
    out.date = _date(reader.text("date"), out.problems)
    for role in ADDRESS_HEADERS:
        out.participants.extend(_participants(role, reader.all_text(role)))
    out.list_id = _first_msgid(reader.text("list-id")) or reader.text("list-id").strip()
    out.automated = _is_automated(reader)
    _bodies(msg, out)
    for defect in getattr(msg, "defects", []):
        out.problems.append(f"structure: {type(defect).__name__}")
    return out


class _HeaderReader:
    """Header values as text: ``policy.default`` first, a raw decode when it raises."""

    def __init__(self, msg: EmailMessage, problems: list[str]) -> None:
        self.msg = msg
        self.problems = problems

    def all_text(self, name: str) -> list[str]:
        try:
            values = [str(v) for v in self.msg.get_all(name) or []]
        except Exception as exc:
            self.problems.append(f"header {name}: {type(exc).__name__}, decoded raw")
            return self.raw_text(name)
        if any("\ufffd" in v for v in values):
            # policy.default replaces undecodable 8-bit bytes; read them ourselves.
            return self.raw_text(name)
        return values

    def raw_text(self, name: str) -> list[str]:
        return [_decode_raw(v) for k, v in self.msg.raw_items() if k.lower() == name]

    def text(self, name: str) -> str:
        values = self.all_text(name)
        return values[0] if values else ""


def _decode_raw(value: str) -> str:
    """RFC 2047 decoding that never raises (unknown charsets fall back to UTF-8/latin-1)."""
    with contextlib.suppress(Exception):
        return _unsurrogate(str(make_header(decode_header(value))))
    chunks = []
    try:
        parts = decode_header(value)
    except Exception:
        return _unsurrogate(value)
    for chunk, charset in parts:
        if isinstance(chunk, str):
            chunks.append(_unsurrogate(chunk))
        else:
            chunks.append(decode_bytes(chunk, charset))
    return "".join(chunks)


def _unsurrogate(text: str) -> str:
    """8-bit header bytes arrive as surrogate escapes: read them as UTF-8, else latin-1."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    data = text.encode("utf-8", "surrogateescape")
    return decode_bytes(data, None)


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset, falling back to UTF-8, then windows-1252, never raising."""
    for candidate in (charset, "utf-8", "cp1252"):
        if not candidate:
            continue
        try:
            codecs.lookup(candidate)
        except LookupError:
            continue
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, ValueError):
            continue
    return data.decode("latin-1")


def _first_msgid(value: str) -> str:
    ids = _all_msgids(value)
    if ids:
        return ids[0]
    value = value.strip()
    return value if value and " " not in value and len(value) < 990 else ""


def _all_msgids(value: str) -> list[str]:
    return [m[:990] for m in _MSGID.findall(value or "")]


def _date(value: str, problems: list[str]) -> datetime | None:
    if not value.strip():
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        problems.append("header date: unreadable")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not (1970 <= parsed.year <= 2200):
        problems.append("header date: out of range")
        return None
    return parsed


def _participants(role: str, values: list[str]) -> list[Participant]:
    found = []
    for name, address in getaddresses(values):
        if not address and not name:
            continue
        cleaned = clean_address(address)
        found.append(
            Participant(
                role=role,
                address=cleaned or address.strip(),
                name=name.strip(),
                valid=bool(cleaned),
            )
        )
    return found


def _is_automated(reader: _HeaderReader) -> bool:
    auto = reader.text("auto-submitted").strip().lower()
    precedence = reader.text("precedence").strip().lower()
    return bool(
        reader.text("list-id")
        or reader.text("list-unsubscribe")
        or (auto and auto != "no")
        or precedence in ("bulk", "list", "junk")
    )


def _bodies(msg: EmailMessage, out: ParsedMessage) -> None:
    """The first text/plain and text/html that are not attachments; the rest are attachments."""
    for index, part in enumerate(msg.walk()):
        if part.is_multipart():
            continue
        ctype = _content_type(part)
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part, out.problems)
        is_body_text = (
            ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename
        )
        if is_body_text and ctype == "text/plain" and not out.text:
            out.text = _text_payload(part, out.problems)[:MAX_TEXT]
            continue
        if is_body_text and ctype == "text/html" and not out.html:
            out.html = _text_payload(part, out.problems)[:MAX_TEXT]
            continue
        if ctype == "message/rfc822" or part.get_content_maintype() == "message":
            payload = part.get_payload()
            size = len(payload.as_bytes()) if isinstance(payload, Message) else 0
        else:
            try:
                payload_bytes = part.get_payload(decode=True) or b""
            except Exception:
                payload_bytes = b""
                out.problems.append(f"part {index}: undecodable payload")
            size = len(payload_bytes)
        if is_body_text and size == 0:
            continue
        out.attachments.append(
            AttachmentInfo(
                part=index,
                filename=filename,
                content_type=ctype,
                size=size,
                content_id=_first_msgid(_safe_header(part, "content-id")) or "",
                inline=disposition == "inline",
            )
        )


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _safe_header(part: Message, name: str) -> str:
    try:
        return str(part.get(name, "") or "")
    except Exception:
        for k, v in part.raw_items():
            if k.lower() == name:
                return _decode_raw(v)
        return ""


def _filename(part: Message, problems: list[str]) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        problems.append("attachment filename unreadable")
        name = ""
    name = _unsurrogate(str(name))
    return name.replace("\x00", "").replace("/", "_").replace("\\", "_").strip()[:255]


def _text_payload(part: Message, problems: list[str]) -> str:
    """A text part as str: ``get_content()`` first, raw bytes and charset fallbacks after."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except Exception as exc:
        problems.append(f"text part: {type(exc).__name__}, decoded with fallback")
    try:
        data = part.get_payload(decode=True) or b""
    except Exception:
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = None
    with contextlib.suppress(Exception):
        charset = part.get_content_charset()
    return decode_bytes(data, charset)


def part_bytes(raw: bytes, index: int) -> tuple[bytes, str, str]:
    """The decoded bytes, content type and filename of part ``index`` (``walk()`` order)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    for i, part in enumerate(msg.walk()):
        if i == index:
            if part.get_content_maintype() == "message" and not part.is_multipart():
                inner = part.get_payload()
                data = inner.as_bytes() if isinstance(inner, Message) else b""
            else:
                data = part.get_payload(decode=True) or b""
            return data, _content_type(part), _filename(part, [])
    raise LookupError(f"no part {index} in this message")
