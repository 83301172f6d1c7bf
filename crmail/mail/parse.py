"""Parsing raw mail into what crmail shows and links, without ever giving up on a message.

``parse_message(raw)`` always returns a ``ParsedMessage``. Real mail is messy (unknown
charsets, broken multiparts, 8-bit headers, malformed Message-IDs that make
``policy.default`` raise on a mere header read), so every field is read with a fallback,
and each fallback taken is written to ``problems``. Only a message whose structure cannot
be read at all raises ``Unparseable``; its raw bytes are kept all the same.

Pure functions on bytes, no I/O, no models: tested on real ``.eml`` files.
"""

from __future__ import annotations

import binascii
import codecs
import contextlib
import functools
import itertools
import quopri
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from email import policy
from email.header import decode_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from crmail.blobs.backends import Place, opened, read_places
from crmail.mail.addresses import clean_address

ADDRESS_HEADERS = ("from", "sender", "reply-to", "to", "cc", "bcc")
MAX_TEXT = 1_000_000  # characters of text or HTML kept per message
SNIPPET = 200  # characters of a message's text shown in lists
# What ``str.split()`` splits between: re's white space is ``str.isspace()``'s.
_NON_SPACE = re.compile(r"\S+")
_MSGID = re.compile(r"<([^<>\s]+)>")
_WS = re.compile(r"\s+")
_SURROGATE = re.compile("[\udc80-\udcff]")


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
    # When the receiving server took it, from the topmost Received field: read only when
    # the Date header is missing, unreadable or ahead of now (its fallback; see ingest).
    received: datetime | None = None
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


def parse_message(raw: bytes, *, headers: bool = True) -> ParsedMessage:
    """Read headers, participants, dates, bodies and attachments from ``raw``; with
    ``headers`` false, the bodies and attachments alone (a first sync read the top-level
    header fields already, ``parse_headers``): no subject, participants, date or other
    header field then, nor the problems found reading them.

    Well-formed messages (nearly all mail) take a fast path: the MIME structure is found
    with byte searches, header fields are split and decoded by crmail (``compat32`` only
    parses MIME parameters), and attachments are measured without decoding them. Anything
    unusual (structural defects, ``message/*`` parts, bare CR line ends, unclean base64 …)
    is read by the standard library's full parser with ``policy.default`` instead, and so
    is a message the fast path fails on in any other way. Both give the same result where
    both apply (tested on real mail); see docs/decisions/010.
    """
    try:
        out = _fast_parse(raw, headers)
    except Exception:  # _NeedsFullParser, or a case the fast path did not foresee
        out = parse_full(raw, headers)
    return _without_nul(out) if _holds_nul(out) else out


def _named(cls: type, annotation: str) -> tuple[str, ...]:
    """The names of the fields of dataclass ``cls`` annotated ``annotation``."""
    return tuple(f.name for f in dataclass_fields(cls) if f.type == annotation)


# Where NUL is looked for and taken out (``_holds_nul``, ``_without_nul``): every text a
# ``ParsedMessage`` holds, in a field of its own, a list, a participant or an attachment.
_TEXTS = _named(ParsedMessage, "str")
_TEXT_LISTS = _named(ParsedMessage, "list[str]")
_PARTICIPANT_TEXTS = _named(Participant, "str")
_ATTACHMENT_TEXTS = _named(AttachmentInfo, "str")


def _holds_nul(out: ParsedMessage) -> bool:
    """Whether a text found holds NUL: taken from the raw bytes as they are, or decoded
    from quoted-printable (``=00``), base64, an encoded word or a charset such as UTF-16
    (the raw bytes then hold none)."""
    texts = [getattr(out, name) for name in _TEXTS]
    texts += [t for name in _TEXT_LISTS for t in getattr(out, name)]
    texts += [getattr(p, name) for p in out.participants for name in _PARTICIPANT_TEXTS]
    texts += [getattr(a, name) for a in out.attachments for name in _ATTACHMENT_TEXTS]
    return any("\x00" in text for text in texts)


def _without_nul(out: ParsedMessage) -> ParsedMessage:
    """NUL bytes removed from every text found: PostgreSQL text cannot hold them (the raw
    bytes keep them)."""

    def clean(text: str) -> str:
        return text.replace("\x00", "")

    def cleaned(item: Any, names: tuple[str, ...]) -> Any:
        return replace(item, **{name: clean(getattr(item, name)) for name in names})

    for name in _TEXTS:
        setattr(out, name, clean(getattr(out, name)))
    for name in _TEXT_LISTS:
        setattr(out, name, [clean(t) for t in getattr(out, name)])
    out.participants = [cleaned(p, _PARTICIPANT_TEXTS) for p in out.participants]
    out.attachments = [cleaned(a, _ATTACHMENT_TEXTS) for a in out.attachments]
    return out


def parse_many(raws: Sequence[bytes], *, headers: bool = True) -> list[ParsedMessage | Unparseable]:
    """``parse_message`` over a batch, an unreadable message's ``Unparseable`` in its place.

    What a parsing worker process runs: this module needs no Django set-up.
    """
    out: list[ParsedMessage | Unparseable] = []
    for raw in raws:
        try:
            out.append(parse_message(raw, headers=headers))
        except Unparseable as exc:
            out.append(exc)
    return out


@dataclass(frozen=True)
class Digest:
    """What saving a parse needs, made where the parse ran (a sync's worker process): the
    message without its text and HTML, its body as plain text (at most ``limit``
    characters), and whether it had HTML. HTML turned into text there, and a smaller
    result handed back, keep that work off the process that fetches and saves."""

    parsed: ParsedMessage
    body_text: str
    has_html: bool
    snippet: str  # the first ``SNIPPET`` characters of the text, its white space collapsed


def digest(parsed: ParsedMessage, limit: int) -> Digest:
    """``parsed`` as saving needs it: the text part, or else the HTML's text."""
    text = parsed.text or html_text(parsed.html)
    body = text[:limit]
    return Digest(replace(parsed, text="", html=""), body, bool(parsed.html), snippet(body))


def snippet(text: str) -> str:
    """The first ``SNIPPET`` characters of ``text`` with its runs of white space made one
    space (``" ".join(text.split())[:SNIPPET]``), reading only as far as they reach: a
    body may be 200,000 characters long."""
    taken: list[str] = []
    size = 0
    for word in _NON_SPACE.finditer(text):
        taken.append(word.group())
        size += len(taken[-1]) + 1
        if size > SNIPPET:
            break
    return " ".join(taken)[:SNIPPET]


def html_text(html: str) -> str:
    """The text of ``html`` (every tag taken out, as nh3 cleans it), for the index and
    the snippet."""
    import nh3

    return nh3.clean(html, tags=set()) if html else ""


def digest_many(
    raws: Sequence[bytes], limit: int, *, headers: bool = True
) -> list[Digest | Unparseable]:
    """``parse_many``, each parse as its ``digest``."""
    return [
        outcome if isinstance(outcome, Unparseable) else digest(outcome, limit)
        for outcome in parse_many(raws, headers=headers)
    ]


def digest_packed(
    items: Sequence[tuple[bytes, bool]], limit: int, *, headers: bool = True
) -> list[Digest | Unparseable]:
    """``digest_many`` over messages as stored: ``(bytes, zstd-compressed?)`` pairs (a
    sync hands on the stored, mostly smaller, form, not a second copy of the raw bytes)."""
    import zstandard

    decompress = zstandard.ZstdDecompressor().decompress
    raws = [decompress(data) if zstd else data for data, zstd in items]
    return digest_many(raws, limit, headers=headers)


# A worker opens each store once (an S3 client is not made per batch).
_opened = functools.cache(opened)


def digest_stored(
    url: str, where: Sequence[Place], zstd: int, limit: int, headers: bool = True
) -> list[Digest | Unparseable]:
    """``digest_packed`` over the blobs at ``where`` (in that order) in the store ``url``
    names, read here: what a worker process runs for the bodies after a first sync, given
    where the messages lie rather than their bytes (``zstd``: the compression code that
    means zstd; ``headers``: as ``parse_message`` takes it). Raises what reading raises
    (``OSError``, ``packs.PackError``)."""
    found = read_places(_opened(url), where)
    forms = [found[digest] for digest, *_ in where]
    items = [(data, compression == zstd) for data, compression in forms]
    return digest_packed(items, limit, headers=headers)


@dataclass(frozen=True)
class Headers:
    """A message read for its header fields and participants alone (``parse_headers``):
    what a first sync saves before the bodies (decision 064). ``parsed`` has no text,
    HTML or attachments."""

    parsed: ParsedMessage


def parse_headers(raw: bytes) -> Headers:
    """The top-level header fields of ``raw`` read as ``parse_message`` reads them (the
    fast path's reader, or the standard library's for what it refuses), without the
    bodies. Problems found reading the bodies come with the full parse, later."""
    if raw.startswith((b"\r\n", b"\n")):
        head_end = 0
    else:
        found = _HEADER_END.search(raw)
        head_end = len(raw) if found is None else found.start() + 1
    out = ParsedMessage()
    try:
        fields, _ = _header_block(raw[:head_end])
        _read_headers(_RawHeaders(fields), out)
    except Exception:  # _NeedsFullParser, or a header the fast reader did not foresee
        try:
            msg = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
        except Exception as exc:
            raise Unparseable(f"{type(exc).__name__}: {exc}") from exc
        out = ParsedMessage()
        _read_headers(_RawHeaders(msg.raw_items()), out)
    return Headers(_without_nul(out) if _holds_nul(out) else out)


def headers_packed(items: Sequence[tuple[bytes, bool]]) -> list[Headers | Unparseable]:
    """``parse_headers`` over messages as stored (``(bytes, zstd-compressed?)``): what a
    first sync's parsing workers run. Only the start of a compressed message is
    decompressed, as far as its header section reaches."""
    import zstandard

    out: list[Headers | Unparseable] = []
    decompressor = zstandard.ZstdDecompressor()
    for data, zstd in items:
        raw = _head_of(decompressor, data) if zstd else data
        try:
            out.append(parse_headers(raw))
        except Unparseable as exc:
            out.append(exc)
    return out


_HEAD_STEP = 16 * 1024


def _head_of(decompressor: Any, data: bytes) -> bytes:
    """The decompressed start of ``data`` up to and past its first blank line (all of it
    when there is none)."""
    reader = decompressor.stream_reader(data)
    head = b""
    while True:
        chunk = reader.read(_HEAD_STEP)
        if not chunk:
            return head
        head += chunk
        if _HEADER_END.search(head, max(0, len(head) - len(chunk) - 2)) or head.startswith(
            (b"\r\n", b"\n")
        ):
            return head


def parse_full(raw: bytes, headers: bool = True) -> ParsedMessage:
    """``parse_message`` through the standard library's parser with ``policy.default``."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser itself is lenient; this is rare and total
        raise Unparseable(f"{type(exc).__name__}: {exc}") from exc
    out = ParsedMessage()
    if headers:
        _read_headers(_RawHeaders(msg.raw_items()), out)
    _bodies(msg, out)
    for defect in getattr(msg, "defects", []):
        out.problems.append(f"structure: {type(defect).__name__}")
    return out


def _read_headers(reader: _RawHeaders, out: ParsedMessage) -> None:
    out.subject = _WS.sub(" ", reader.text("subject")).strip()
    out.message_id = _first_msgid(reader.text("message-id"))
    out.in_reply_to = _first_msgid(reader.text("in-reply-to"))
    out.references = _all_msgids(reader.text("references"))
    out.date = _date(reader.text("date"), out.problems)
    if out.date is None or out.date > datetime.now(UTC):
        out.received = _received(reader)
    for role in ADDRESS_HEADERS:
        out.participants.extend(reader.participants(role))
    out.list_id = _first_msgid(reader.text("list-id")) or reader.text("list-id").strip()
    out.automated = _is_automated(reader)


class _RawHeaders:
    """Top-level header values read from their raw text, decoded by crmail.

    ``policy.default``'s header registry is slow and raises on malformed values; here
    RFC 2047 words go through ``email.header.decode_header`` and 8-bit bytes are read as
    UTF-8, else windows-1252. Addresses are split before their names are decoded, so a
    decoded comma cannot split a name, and ``addr (Name)`` keeps its name. Both parsing
    paths read headers this way.
    """

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        # Values as they stand, unfolded when read: most fields (Received, DKIM-Signature
        # …) are never read.
        self.values: dict[str, list[str]] = {}
        for name, value in items:
            self.values.setdefault(name.lower(), []).append(value)

    def text(self, name: str) -> str:
        values = self.values.get(name)
        return decode_words(_unfold(values[0])) if values else ""

    def participants(self, role: str) -> list[Participant]:
        values = self.values.get(role)
        if not values:
            return []
        found = []
        for name, address in split_addresses([_unfold(value) for value in values]):
            if not address and not name:
                continue
            address = _unsurrogate(address)
            cleaned = _clean_address(address)
            found.append(
                Participant(
                    role=role,
                    address=cleaned or address.strip(),
                    name=_WS.sub(" ", decode_words(name)).strip(),
                    valid=bool(cleaned),
                )
            )
        return found


_ATOM = r"[^ \t\r\n<>()@,;:\\\".\[\]]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
_PHRASE = rf"(?:{_ATOM}\.?)(?:[ \t]+{_ATOM}\.?)*"
_SIMPLE_MAILBOX = re.compile(
    rf'[ \t]*(?:(?:({_PHRASE})|"([^"\\\r\n]*)")[ \t]*<({_ADDR_SPEC})>|({_ADDR_SPEC}))[ \t]*'
)


def split_addresses(values: list[str]) -> list[tuple[str, str]]:
    """``email.utils.getaddresses`` for unfolded header values, with a quick path.

    Values made only of ``Name <local@domain>`` and bare ``local@domain`` items (no
    quotes, comments, groups or routes) are split with one regular expression, which
    gives what ``getaddresses`` gives (tested); anything else goes to ``getaddresses``.
    """
    found: list[tuple[str, str]] = []
    for value in values:
        items = value.split(",")
        simple = []
        for item in items:
            match = _SIMPLE_MAILBOX.fullmatch(item)
            if match is None:
                break
            name, quoted, address, bare = match.groups()
            if address:
                simple.append((" ".join(name.split()) if name else quoted, address))
            else:
                simple.append(("", bare))
        else:
            found.extend(simple)
            continue
        found.extend(getaddresses([value]))
    return found


@functools.lru_cache(maxsize=4096)
def _clean_address(address: str) -> str:
    return clean_address(address)


def _unfold(value: str) -> str:
    return value.replace("\r\n", "").replace("\n", "") if "\n" in value else value


def decode_words(value: str) -> str:
    """A header value with RFC 2047 encoded words decoded; never raises."""
    if "=?" not in value:
        return _unsurrogate(value)
    return _decode_raw(value)


def _decode_raw(value: str) -> str:
    """RFC 2047 decoding that never raises (unknown charsets fall back to UTF-8/latin-1).

    The decoded pieces are joined as they stand: ``make_header`` would put a space
    between an encoded word and the text it is glued to (``H=?iso-8859-1?b?9g==?=hn``).
    """
    try:
        parts = decode_header(value)
    except Exception:
        return _unsurrogate(value)
    chunks = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            chunks.append(_unsurrogate(chunk))
        elif charset is None:
            chunks.append(_unsurrogate(chunk.decode("raw-unicode-escape")))
        else:
            chunks.append(decode_bytes(chunk, charset))
    return "".join(chunks)


def _unsurrogate(text: str) -> str:
    """8-bit header bytes arrive as surrogate escapes: read them as UTF-8, else latin-1."""
    if text.isascii() or not _SURROGATE.search(text):
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
    # In UTC: the same instant, and one PostgreSQL takes (it refuses offsets past 15:59,
    # which real mail has: "-1900").
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if not (1970 <= parsed.year <= 2200):
        problems.append("header date: out of range")
        return None
    return parsed


def _received(reader: _RawHeaders) -> datetime | None:
    """The date of the topmost Received field (RFC 5322 §3.6.7: the trace's date follows
    its last ';'), added by the server that delivered the message: the lower ones may
    be anyone's. None when there is none or it cannot be read."""
    values = reader.values.get("received")
    if not values:
        return None
    _, semicolon, when = _unfold(values[0]).rpartition(";")
    return _date(when, []) if semicolon else None


def _is_automated(reader: _RawHeaders) -> bool:
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
    return _clean_filename(_unsurrogate(str(name)))


def _clean_filename(name: str) -> str:
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


# -- the fast path ------------------------------------------------------------------------


class _NeedsFullParser(Exception):
    """Something the fast path does not read exactly like ``policy.default``."""


_HEADER_END = re.compile(rb"\n\r?\n")
# A header field's name: printable ASCII but the colon (RFC 5322 §2.2).
_FIELD_NAME = r"[\041-\071\073-\176]+"
# One header field: name, colon, value and its continuation lines (as feedparser reads it).
_HEADER_FIELD = re.compile(rf"({_FIELD_NAME}):[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)(?:\n|\Z)")
# A header block made of such fields alone, each one taken whole (atomic: a block that is
# not one fails at once, without trying other ways to cut its fields).
_HEADER_FIELDS = re.compile(rf"(?>{_FIELD_NAME}:[^\n]*+(?:\n[ \t][^\n]*+)*+(?:\n|\Z))*+")
_BOUNDARY_TAIL = re.compile(rb"(--)?[ \t]*(?:\r\n|\n)?")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Headers whose values the fast path reads through compat32's parameter parsing.
_MIME_HEADERS = ("content-type", "content-disposition", "content-transfer-encoding")
_MIME_FIELDS = frozenset((*_MIME_HEADERS, "content-id"))
_MAX_DEPTH = 40


@dataclass
class _Entity:
    """One node of the MIME tree in ``walk()`` order: headers and, for leaves, the body."""

    fields: list[tuple[str, str]]
    headers: Message  # the MIME headers only
    ctype: str
    body: bytes | None  # None for a multipart


def _fast_parse(raw: bytes, headers: bool = True) -> ParsedMessage:
    entities: list[_Entity] = []
    _split(raw, 0, len(raw), entities, 0)
    out = ParsedMessage()
    if headers:
        _read_headers(_RawHeaders(entities[0].fields), out)
    for index, entity in enumerate(entities):
        if entity.body is not None:
            _fast_leaf(index, entity, out)
    return out


def _header_block(block: bytes) -> tuple[list[tuple[str, str]], Message]:
    """The header fields of one entity as the stdlib's feedparser would store them (name,
    raw value), and its MIME headers as a compat32 ``Message`` for parameter parsing.
    Anything the feedparser would flag as a defect is refused."""
    if block.count(b"\r") != block.count(b"\r\n"):
        raise _NeedsFullParser("bare CR")  # the stdlib also ends lines at a bare CR
    text = block.decode("ascii", "surrogateescape")
    if _HEADER_FIELDS.fullmatch(text) is None:
        raise _NeedsFullParser("not a header line")
    # The block is field after field: findall cuts it as matching one field after the
    # other from its start would.
    fields = [(name, value.rstrip("\r\n")) for name, value in _HEADER_FIELD.findall(text)]
    mime = Message(policy=compat32)
    for name, value in fields:
        if name.lower() in _MIME_FIELDS:
            mime.set_raw(name, value)
    return fields, mime


def _split(data: bytes, start: int, end: int, out: list[_Entity], depth: int) -> None:
    """Append the entity in ``data[start:end]`` and its parts to ``out``, in walk() order."""
    if depth > _MAX_DEPTH:
        raise _NeedsFullParser("nesting")
    if data.startswith(b"\r\n", start, end):
        head_end, body_start = start, start + 2
    elif data.startswith(b"\n", start, end):
        head_end, body_start = start, start + 1
    else:
        found = _HEADER_END.search(data, start, end)
        if found is None:
            head_end = body_start = end
        else:
            head_end, body_start = found.start() + 1, found.end()
    fields, headers = _header_block(data[start:head_end])
    for name, value in headers.raw_items():
        if name.lower() in _MIME_HEADERS and not value.isascii():
            raise _NeedsFullParser("8-bit MIME header")
    ctype = headers.get_content_type()
    maintype = ctype.split("/", 1)[0]
    if maintype == "message" or ctype == "multipart/digest":
        raise _NeedsFullParser("message part")
    if maintype != "multipart":
        out.append(_Entity(fields, headers, ctype, data[body_start:end]))
        return
    boundary = headers.get_boundary()
    cte = str(headers.get("content-transfer-encoding", "8bit")).lower()
    if not boundary or not boundary.isascii() or cte not in ("7bit", "8bit", "binary"):
        raise _NeedsFullParser("multipart")
    out.append(_Entity(fields, headers, ctype, None))
    lines = _boundary_lines(data, body_start, end, boundary.encode("ascii"))
    if not lines or lines[0][2]:
        raise _NeedsFullParser("no start boundary")
    for (_, part_start, _), (line_start, _, close) in itertools.pairwise(lines):
        if line_start == part_start:
            raise _NeedsFullParser("empty part")
        # The line end before a boundary belongs to the boundary (RFC 2046 5.1.1).
        part_end = line_start - 1
        if part_end > part_start and data[part_end - 1] == 0x0D:
            part_end -= 1
        _split(data, part_start, part_end, out, depth + 1)
        if close:
            return
    raise _NeedsFullParser("no close boundary")


def _boundary_lines(
    data: bytes, start: int, end: int, boundary: bytes
) -> list[tuple[int, int, bool]]:
    """(line start, line end, is close) of each delimiter line of ``boundary``, up to the
    close delimiter, as the stdlib's feedparser recognises them."""
    needle = b"--" + boundary
    found: list[tuple[int, int, bool]] = []
    pos = start
    while True:
        at = data.find(needle, pos, end)
        if at < 0:
            return found
        pos = at + 1
        if at != start and data[at - 1] != 0x0A:
            if data[at - 1] == 0x0D:
                raise _NeedsFullParser("bare CR")
            continue
        after = at + len(needle)
        newline = data.find(b"\n", after, end)
        line_end = end if newline < 0 else newline + 1
        tail = _BOUNDARY_TAIL.fullmatch(data, after, line_end)
        if tail is None:
            if 0 <= data.find(b"\r", after, line_end) < line_end - 2:
                raise _NeedsFullParser("bare CR")
            continue
        found.append((at, line_end, bool(tail.group(1))))
        if tail.group(1):
            return found
        pos = line_end


def _fast_leaf(index: int, entity: _Entity, out: ParsedMessage) -> None:
    """What ``_bodies`` does for one leaf part, from its headers and raw body bytes."""
    part, body, ctype = entity.headers, entity.body or b"", entity.ctype
    disposition = (part.get_content_disposition() or "").lower()
    try:
        name = str(part.get_filename() or "")
    except Exception as exc:
        raise _NeedsFullParser("filename") from exc
    filename = _clean_filename(decode_words(name))
    is_body_text = (
        ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename
    )
    cte = str(part.get("content-transfer-encoding", "")).lower()
    if is_body_text and ctype == "text/plain" and not out.text:
        out.text = _fast_text(part, body, cte, out.problems)[:MAX_TEXT]
        return
    if is_body_text and ctype == "text/html" and not out.html:
        out.html = _fast_text(part, body, cte, out.problems)[:MAX_TEXT]
        return
    size = decoded_size(body, cte)
    if is_body_text and size == 0:
        return
    content_id = ""
    for name, value in part.raw_items():
        if name.lower() == "content-id":
            content_id = _first_msgid(_unfold(value))
            break
    out.attachments.append(
        AttachmentInfo(
            part=index,
            filename=filename,
            content_type=ctype,
            size=size,
            content_id=content_id,
            inline=disposition == "inline",
        )
    )


def _fast_text(part: Message, body: bytes, cte: str, problems: list[str]) -> str:
    data = _decode_body(body, cte)
    charset = part.get_param("charset", "ASCII")
    if not isinstance(charset, str):
        raise _NeedsFullParser("RFC 2231 charset")
    try:
        return data.decode(charset, "replace")
    except LookupError:
        problems.append("text part: LookupError, decoded with fallback")
        return decode_bytes(data, None)


def _decode_body(body: bytes, cte: str) -> bytes:
    """``Message.get_payload(decode=True)`` for a body the fast path accepts."""
    if cte == "base64":
        stripped = body.translate(None, b"\r\n")
        if _clean_base64(stripped) is None:
            raise _NeedsFullParser("base64")
        return binascii.a2b_base64(stripped)
    if cte == "quoted-printable":
        return quopri.decodestring(body)
    if cte in ("x-uuencode", "uuencode", "uue", "x-uue"):
        raise _NeedsFullParser("uuencode")
    return body


def _clean_base64(stripped: bytes) -> int | None:
    """The decoded length of base64 text without line breaks, when it is well formed
    (padded, only the alphabet): what the stdlib decodes without a defect."""
    core = stripped.rstrip(b"=")
    if len(stripped) % 4 or len(stripped) - len(core) > 2 or core.translate(None, _B64_ALPHABET):
        return None
    return len(core) * 3 // 4


def decoded_size(body: bytes, cte: str) -> int:
    """Bytes of a part once its transfer encoding is undone, decoding only when needed.

    Base64 is measured, not decoded: every 4 characters carry 3 bytes, less one per
    ``=`` of padding. Exact for well-formed base64 (tested against decoding on real mail);
    base64 that is not clean goes to the full parser, which decodes it.
    """
    if cte == "base64":
        size = _base64_size(body)
        if size is None:
            size = _clean_base64(body.translate(None, b"\r\n"))
        if size is None:
            raise _NeedsFullParser("base64")
        return size
    return len(_decode_body(body, cte))


def _base64_size(body: bytes) -> int | None:
    """The decoded size of base64 written in lines of one length (as encoders write it),
    read from the line structure without a pass over every byte; None for other shapes."""
    eol = body.find(b"\n")
    if eol <= 0:
        return None
    step = eol + 1
    eol_len = 2 if body[eol - 1] == 0x0D else 1
    full = len(body) // step * step
    newlines = body[eol:full:step]
    if newlines.count(b"\n") != len(newlines):
        return None
    if eol_len == 2:
        returns = body[eol - 1 : full : step]
        if returns.count(b"\r") != len(returns):
            return None
    tail = body[full:].translate(None, b"\r\n")
    last = tail or body[full - step : full - eol_len]
    if tail and len(tail) > step - eol_len:
        return None
    chars = full // step * (step - eol_len) + len(tail)
    padding = len(last) - len(last.rstrip(b"="))
    first = body[: eol + 1 - eol_len]
    if chars % 4 or padding > 2 or first.translate(None, _B64_ALPHABET):
        return None
    if last.rstrip(b"=").translate(None, _B64_ALPHABET):
        return None
    return chars // 4 * 3 - padding


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


def detach(raw: bytes, parts: Collection[int]) -> tuple[bytes, dict[int, bytes]]:
    """``raw`` without the leaf parts ``parts`` (``AttachmentInfo.part``, ``walk()`` order)
    and the decoded bytes of each part taken out; the headers and every other part stay as
    they were. A part inside an attached message stays: that message is one whole. For a
    mail API that takes a message's large attachments apart from it (Graph)."""
    msg = BytesParser(policy=policy.SMTP).parsebytes(raw)
    nodes: list[tuple[Message, Message | None, bool]] = []  # (part, parent, inside a message/*)
    todo: list[tuple[Message, Message | None, bool]] = [(msg, None, False)]
    while todo:  # walk()'s order: a part, then its subparts depth first
        node, parent, sealed = todo.pop()
        nodes.append((node, parent, sealed))
        if node.is_multipart():
            inner = sealed or node.get_content_maintype() == "message"
            todo.extend((child, node, inner) for child in reversed(node.get_payload()))
    taken: dict[int, bytes] = {}
    for index in sorted(set(parts)):
        if not 0 <= index < len(nodes):
            raise LookupError(f"no part {index} in this message")
        node, parent, sealed = nodes[index]
        if parent is None or sealed or node.is_multipart():
            continue
        taken[index] = node.get_payload(decode=True) or b""
        siblings = parent.get_payload()
        siblings[:] = [p for p in siblings if p is not node]
    return (msg.as_bytes() if taken else raw), taken
