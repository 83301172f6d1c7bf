"""IMAP4rev1 wire format without I/O: parse server responses, build command arguments.

Everything here works on bytes and is unit-tested on raw server output; ``imap.py`` does
the socket work. References: RFC 3501 (IMAP4rev1; §9 is the formal syntax), RFC 7162
(CONDSTORE/QRESYNC), RFC 6851 (MOVE), RFC 4315 (UIDPLUS), RFC 6154 (SPECIAL-USE),
RFC 4731 (ESEARCH), RFC 5530 (response codes), RFC 7628/Google (XOAUTH2).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

# -- responses ---------------------------------------------------------------------------

STATUS_KINDS = frozenset({b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"})

# The tokens of a data response (RFC 3501 §9), found by one findall per line: "(" / ")" /
# a quoted string (kept with its quotes, so "" is not lost) / a literal marker at the end
# of a line / an atom, which may hold "[...]" sections such as
# BODY[HEADER.FIELDS (MESSAGE-ID)] or [Gmail]/Sent / anything else (an error). Spaces
# between tokens match nothing and are skipped.
_TOKENS = re.compile(
    rb'(\()|(\))|("(?:[^"\\]|\\.)*")|\{(\d+)\+?\}$|((?:\[[^\]]*\]|[^ ()"\[\r\n])+|\[)|([^ ])',
    re.DOTALL,
)
_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}$")
_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)


class ProtocolError(ValueError):
    """The server sent something this parser cannot read."""


@dataclass(slots=True)
class Response:
    """One server response (RFC 3501 §7), parsed.

    ``tag`` is None for untagged ("*") responses and b"+" for continuation requests.
    ``kind`` is upper-case: b"OK", b"NO", b"FETCH", b"EXISTS", b"LIST", b"+" ...
    Status responses (OK/NO/BAD/BYE/PREAUTH) have ``code``/``code_data`` (the bracketed
    response code, RFC 3501 §7.1) and ``text``; data responses have ``data`` (tokens:
    bytes, None for NIL, nested lists for parentheses) and ``number`` for "* 5 EXISTS".
    """

    tag: bytes | None
    kind: bytes
    number: int | None = None
    code: bytes | None = None
    code_data: bytes = b""
    text: bytes = b""
    data: list[Any] = field(default_factory=list)  # tokens: bytes, None, lists of them

    @property
    def status(self) -> bool:
        return self.kind in STATUS_KINDS

    def text_str(self) -> str:
        return self.text.decode("utf-8", "replace").strip()


def literal_size(line: bytes) -> int | None:
    """The size of the literal announced at the end of ``line`` (``{123}``), else None."""
    if not line.endswith(b"}"):
        return None
    m = _LITERAL_AT_END.search(line)
    return int(m.group(1)) if m else None


def line_may_have_literal(first_line: bytes) -> bool:
    """False for lines that cannot announce a literal: status responses and continuations.

    Their human-readable text could end in "{5}" by chance (RFC 3501 §9: resp-text).
    """
    if first_line.startswith(b"+"):
        return False
    parts = first_line.split(b" ", 3)
    if len(parts) >= 2 and parts[1].upper() in STATUS_KINDS:
        return False
    return not (len(parts) >= 3 and parts[0] == b"*" and parts[2].upper() in STATUS_KINDS)


def tokenize(segments: Sequence[bytes], text: bytes, start: int = 0) -> list[Any]:
    """Tokens of a data response: ``text`` (the rest of the first line) and the literals.

    ``segments`` alternates line text and literal bytes as read from the wire:
    [line0, literal0, line1, literal1, ..., lineN]; ``text`` replaces line0. Atoms and
    strings come back as bytes, NIL as None, parenthesised lists as lists.
    """
    stack: list[list[Any]] = [[]]
    top = stack[0]
    seg = 0
    line = text[start:] if start else text
    while True:
        literal = False
        for lp, rp, quoted, lit, atom, bad in _TOKENS.findall(line):
            if atom:
                top.append(None if len(atom) == 3 and atom.upper() == b"NIL" else atom)
            elif quoted:
                value = quoted[1:-1]
                top.append(_UNESCAPE.sub(rb"\1", value) if b"\\" in value else value)
            elif lp:
                new: list[Any] = []
                top.append(new)
                stack.append(new)
                top = new
            elif rp:
                if len(stack) == 1:
                    raise ProtocolError("unbalanced ')'")
                stack.pop()
                top = stack[-1]
            elif lit:
                if seg + 1 >= len(segments):
                    raise ProtocolError("literal announced but missing")
                top.append(segments[seg + 1])
                literal = True
            else:
                raise ProtocolError(f"cannot parse {bad!r} in {line[:60]!r}")
        seg += 2
        if not literal or seg >= len(segments):
            break
        line = segments[seg]
    if len(stack) != 1:
        raise ProtocolError("unbalanced '('")
    return stack[0]


def parse_response(segments: Sequence[bytes]) -> Response:
    """Parse one response (a first line, then literal/line pairs) into a `Response`.

    A NUL outside a literal is never valid (RFC 3501 §9: CHAR8 and TEXT-CHAR exclude it).
    """
    if any(b"\x00" in segments[i] for i in range(0, len(segments), 2)):
        raise ProtocolError("a NUL byte outside a literal")
    line = segments[0]
    if line.startswith(b"+"):
        return Response(b"+", b"+", text=line[2:] if line[1:2] == b" " else line[1:])
    tag, sp, rest = line.partition(b" ")
    if not sp:
        raise ProtocolError(f"response without a space: {line[:60]!r}")
    untagged = tag == b"*"
    word, _, after = rest.partition(b" ")
    number = None
    if untagged and word.isdigit():
        number = int(word)
        word, _, after = after.partition(b" ")
    kind = word.upper()
    if kind in STATUS_KINDS:
        code, code_data, text = _resp_text(after)
        return Response(None if untagged else tag, kind, number, code, code_data, text)
    if not untagged:
        raise ProtocolError(f"tagged response that is not OK/NO/BAD: {line[:60]!r}")
    offset = len(line) - len(after)
    return Response(None, kind, number, data=tokenize(segments, line, offset))


def _resp_text(text: bytes) -> tuple[bytes | None, bytes, bytes]:
    """Split resp-text (RFC 3501 §9) into (code, code data, human text)."""
    if not text.startswith(b"["):
        return None, b"", text
    end = text.find(b"]")
    if end < 0:
        return None, b"", text
    inner = text[1:end]
    name, _, data = inner.partition(b" ")
    return name.upper(), data, text[end + 1 :].lstrip(b" ")


# -- sequence sets (RFC 3501 §9: sequence-set) ----------------------------------------------


def compact_uids(uids: Iterable[int]) -> str:
    """A compact UID set: [1, 2, 3, 5, 7, 8] → "1:3,5,7:8"."""
    return ",".join(a if a == b else f"{a}:{b}" for a, b in _ranges(uids))


def _ranges(uids: Iterable[int]) -> Iterator[tuple[str, str]]:
    ordered = sorted(set(uids))
    if not ordered:
        return
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid != prev + 1:
            yield str(start), str(prev)
            start = uid
        prev = uid
    yield str(start), str(prev)


def chunk_uids(uids: Sequence[int], max_count: int, max_chars: int = 4000) -> Iterator[list[int]]:
    """Split ``uids`` (order kept) into chunks of ≤ max_count whose compact set stays short.

    Servers limit command lines (Dovecot 64 kB, others 8 kB), so sparse UIDs go in
    several commands.
    """
    chunk: list[int] = []
    chars = 0
    for uid in uids:
        width = len(str(uid)) + 1  # worst case: each UID on its own
        if chunk and (len(chunk) >= max_count or chars + width > max_chars):
            yield chunk
            chunk, chars = [], 0
        chunk.append(uid)
        chars += width
    if chunk:
        yield chunk


def parse_uid_ranges(text: bytes | str) -> list[tuple[int, int]]:
    """ "1:3,5,9:7" → [(1, 3), (5, 5), (7, 9)] (ranges may be written high:low)."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    out: list[tuple[int, int]] = []
    for part in text.split(","):
        if not part:
            continue
        a, _, b = part.partition(":")
        lo, hi = int(a), int(b or a)
        out.append((min(lo, hi), max(lo, hi)))
    return out


def expand_uid_set(text: bytes | str, below: int | None = None) -> list[int]:
    """All UIDs of a set, ascending, optionally only those < ``below``."""
    out: set[int] = set()
    for lo, hi in parse_uid_ranges(text):
        if below is not None:
            hi = min(hi, below - 1)
        out.update(range(lo, hi + 1))
    return sorted(out)


def uid_set_size(text: bytes | str) -> int:
    """How many UIDs a set names (counting overlaps twice), without expanding it."""
    return sum(hi - lo + 1 for lo, hi in parse_uid_ranges(text))


# -- FETCH (RFC 3501 §7.4.2) --------------------------------------------------------------------


@dataclass(slots=True)
class FetchItem:
    """The items of one FETCH response that crmail uses."""

    seq: int
    uid: int | None = None
    flags: list[bytes] | None = None
    modseq: int | None = None
    size: int | None = None
    internal_date: datetime | None = None
    body: bytes | None = None  # BODY[...] content (BODY[] or a header section)


def parse_fetch(resp: Response) -> FetchItem:
    """Read UID, FLAGS, MODSEQ (RFC 7162 §3.1.4.1), RFC822.SIZE, INTERNALDATE, BODY[...]."""
    if not resp.data or not isinstance(resp.data[0], list):
        raise ProtocolError("FETCH without a list")
    items = resp.data[0]
    out = FetchItem(resp.number or 0)
    for i in range(0, len(items) - 1, 2):
        name, value = items[i], items[i + 1]
        if not isinstance(name, bytes):
            continue
        key = name.upper()
        if key == b"UID":
            out.uid = int(value)
        elif key == b"FLAGS":
            out.flags = [f for f in value if isinstance(f, bytes)] if value else []
        elif key == b"MODSEQ":
            out.modseq = int(value[0]) if isinstance(value, list) else int(value)
        elif key == b"RFC822.SIZE":
            out.size = int(value)
        elif key == b"INTERNALDATE":
            out.internal_date = parse_internal_date(value) if value else None
        elif key.startswith((b"BODY[", b"BINARY[", b"RFC822")) and key != b"RFC822.SIZE":
            out.body = value if isinstance(value, bytes) else None
    return out


_MONTHS = {
    m: i + 1 for i, m in enumerate(b"JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())
}
_MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_DATE_TIME = re.compile(
    rb"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$"
)


def parse_internal_date(value: bytes) -> datetime | None:
    """INTERNALDATE ("17-Jul-1996 02:44:25 -0700", RFC 3501 §9 date-time) → aware datetime."""
    m = _DATE_TIME.match(value)
    if not m:
        return None
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    month = _MONTHS.get(mon.upper())
    if month is None:
        return None
    offset = timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == b"-" else 1)
    try:
        return datetime(
            int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=timezone(offset)
        )
    except ValueError:
        return None


def format_internal_date(when: datetime) -> str:
    """An aware (or UTC-assumed naive) datetime as IMAP date-time for APPEND (RFC 3501 §6.3.11)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    offset = when.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f"{when.day:02d}-{_MONTH_NAMES[when.month - 1]}-{when.year:04d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


# -- flags (RFC 3501 §2.3.2) ----------------------------------------------------------------

_SYSTEM_FLAGS = {
    "\\seen": "seen",
    "\\flagged": "flagged",
    "\\answered": "answered",
    "\\deleted": "deleted",
    "\\draft": "draft",
}
_TO_IMAP = {v: "\\" + v.capitalize() for v in _SYSTEM_FLAGS.values()}
# flag-keyword = atom (RFC 3501 §9); atom-specials excluded, ASCII only.
_KEYWORD = re.compile(r"^\\?[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+$")


def flags_from_imap(flags: Iterable[bytes]) -> frozenset[str]:
    """Server flags → crmail names (base.FLAGS); keywords kept; \\Recent dropped."""
    out: set[str] = set()
    for raw in flags:
        name = raw.decode("utf-8", "replace")
        low = name.lower()
        if low in _SYSTEM_FLAGS:
            out.add(_SYSTEM_FLAGS[low])
        elif low != "\\recent":
            out.add(name)
    return frozenset(out)


def flags_to_imap(names: Iterable[str]) -> list[str]:
    """crmail names → IMAP flags ("seen" → "\\Seen"); keywords must be valid atoms."""
    out: list[str] = []
    for name in names:
        flag = _TO_IMAP.get(name.lower(), name)
        if not _KEYWORD.match(flag) or flag.lower() == "\\recent":
            raise ValueError(f"not a flag an IMAP server can store: {name!r}")
        out.append(flag)
    return sorted(set(out))


# -- mailbox names: modified UTF-7 (RFC 3501 §5.1.3) ---------------------------------------


def encode_mutf7(name: str) -> str:
    """Encode a mailbox name in modified UTF-7: "Überfällig" → "&ANw-berf&AOQ-llig".

    Lone surrogates (not Unicode scalar values) raise ``UnicodeEncodeError`` (a ValueError).
    """
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            b64 = base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            pending.clear()

    for ch in name:
        if " " <= ch <= "~":
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def decode_mutf7(name: str | bytes) -> str:
    """Decode modified UTF-7; raise ValueError on malformed input."""
    if isinstance(name, bytes):
        name = name.decode("ascii")
    out: list[str] = []
    i = 0
    while i < len(name):
        amp = name.find("&", i)
        if amp < 0:
            out.append(name[i:])
            break
        out.append(name[i:amp])
        end = name.find("-", amp + 1)
        if end < 0:
            raise ValueError("unterminated '&' shift in mailbox name")
        if end == amp + 1:
            out.append("&")
        else:
            b64 = name[amp + 1 : end].replace(",", "/")
            if not re.fullmatch(r"[A-Za-z0-9+/]+", b64) or len(b64) % 4 == 1:
                raise ValueError("bad base64 in mailbox name")
            data = base64.b64decode(b64 + "=" * (-len(b64) % 4))
            if len(data) % 2:
                raise ValueError("odd UTF-16 length in mailbox name")
            out.append(data.decode("utf-16-be"))
        i = end + 1
    return "".join(out)


def decode_mailbox(raw: bytes) -> str:
    """A mailbox name from the wire → text; 8-bit names (UTF8=ACCEPT, RFC 6855) are UTF-8.

    Names that are neither valid modified UTF-7 nor UTF-8 come back with escapes; the
    driver keeps the raw bytes of every listed name, so such folders stay selectable.
    """
    try:
        return decode_mutf7(raw)
    except (UnicodeDecodeError, ValueError):
        return raw.decode("utf-8", "backslashreplace")


def quote(value: bytes) -> bytes | None:
    """A quoted string (RFC 3501 §4.3), or None when only a literal can carry ``value``."""
    if any(b > 0x7E or b in (0, 10, 13) for b in value):
        return None
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


# -- mailbox listing (RFC 3501 §7.2.2, RFC 6154) -------------------------------------------

SPECIAL_USE = {
    b"\\SENT": "sent",
    b"\\DRAFTS": "drafts",
    b"\\TRASH": "trash",
    b"\\JUNK": "junk",
    b"\\ARCHIVE": "archive",
    b"\\ALL": "archive",  # Gmail's "All Mail"; used only when no folder says \Archive
}
# Names by convention for servers without SPECIAL-USE, best first (compared case-folded,
# on the full name and on the name without a leading "INBOX<delimiter>").
CONVENTIONS: dict[str, tuple[str, ...]] = {
    "sent": ("sent", "sent items", "sent messages", "sent mail", "[gmail]/sent mail", "gesendet"),
    "drafts": ("drafts", "draft", "[gmail]/drafts", "entwürfe"),
    "trash": ("trash", "deleted items", "deleted messages", "bin", "[gmail]/trash", "papierkorb"),
    "junk": ("junk", "spam", "junk e-mail", "junk email", "bulk mail", "[gmail]/spam"),
    "archive": ("archive", "archives", "archiv"),
    "outbox": ("outbox",),
}


@dataclass(frozen=True)
class ListEntry:
    """One LIST response: the raw name (for commands), decoded name, delimiter, attributes."""

    raw: bytes
    name: str
    delimiter: str | None
    attributes: frozenset[bytes]  # upper-case, e.g. b"\\NOSELECT", b"\\SENT"

    @property
    def selectable(self) -> bool:
        return not ({b"\\NOSELECT", b"\\NONEXISTENT"} & self.attributes)

    @property
    def special_use(self) -> str | None:
        for attr, role in SPECIAL_USE.items():
            if attr in self.attributes and attr != b"\\ALL":
                return role
        return None


def parse_list(resp: Response) -> ListEntry:
    """``* LIST (\\HasNoChildren \\Sent) "/" Sent`` → ListEntry (RFC 3501 §7.2.2)."""
    data = resp.data
    if len(data) < 3 or not isinstance(data[0], list):
        raise ProtocolError("malformed LIST response")
    attrs = frozenset(a.upper() for a in data[0] if isinstance(a, bytes))
    delim = data[1].decode("ascii", "replace") if isinstance(data[1], bytes) else None
    raw = data[2] if isinstance(data[2], bytes) else b"NIL"
    name = "INBOX" if raw.upper() == b"INBOX" else decode_mailbox(raw)
    return ListEntry(raw, name, delim, attrs)


def assign_roles(entries: Sequence[ListEntry]) -> dict[bytes, str]:
    """Folder roles: INBOX, SPECIAL-USE attributes (RFC 6154 §2), then names by convention.

    Each role goes to one folder at most; a role no folder claims by attribute is given to
    the best conventional name among selectable folders (the user may override it later).
    """
    roles: dict[bytes, str] = {}
    taken: set[str] = set()
    for e in entries:
        if e.name == "INBOX":
            roles[e.raw] = "inbox"
            taken.add("inbox")
    for e in entries:
        role = e.special_use
        if role and role not in taken and e.raw not in roles:
            roles[e.raw] = role
            taken.add(role)
    if "archive" not in taken:
        for e in entries:
            if b"\\ALL" in e.attributes and e.raw not in roles and e.selectable:
                roles[e.raw] = "archive"
                taken.add("archive")
                break
    for role, names in CONVENTIONS.items():
        if role in taken:
            continue
        best: tuple[int, bytes] | None = None
        for e in entries:
            if e.raw in roles or not e.selectable:
                continue
            rank = _convention_rank(e, names)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, e.raw)
        if best is not None:
            roles[best[1]] = role
            taken.add(role)
    return roles


def _convention_rank(entry: ListEntry, names: tuple[str, ...]) -> int | None:
    candidates = [entry.name.casefold()]
    if entry.delimiter:
        prefix = "inbox" + entry.delimiter
        if candidates[0].startswith(prefix):
            candidates.append(candidates[0][len(prefix) :])
        if entry.delimiter != "/":
            candidates.append(candidates[-1].replace(entry.delimiter, "/"))
    for rank, name in enumerate(names):
        if name in candidates:
            return rank
    return None


# -- SEARCH / ESEARCH (RFC 3501 §7.2.5, RFC 4731 §3.2) ------------------------------------


def search_uids(resp: Response) -> list[int]:
    """UIDs of a ``* SEARCH`` or ``* ESEARCH ... UID ALL set`` response."""
    if resp.kind == b"SEARCH":
        return [int(t) for t in resp.data if isinstance(t, bytes) and t.isdigit()]
    if resp.kind == b"ESEARCH":
        data = [t for t in resp.data if not isinstance(t, list)]
        for i, token in enumerate(data[:-1]):
            if isinstance(token, bytes) and token.upper() == b"ALL":
                value = data[i + 1]
                return expand_uid_set(value) if value else []
        return []
    raise ProtocolError(f"not a search response: {resp.kind!r}")


def vanished_set(resp: Response) -> tuple[bool, bytes]:
    """``* VANISHED (EARLIER) 1:3,7`` → (earlier, b"1:3,7") (RFC 7162 §3.2.10)."""
    earlier = bool(resp.data) and isinstance(resp.data[0], list)
    value = resp.data[-1] if resp.data else b""
    return earlier, value if isinstance(value, bytes) else b""


def code_numbers(resp: Response) -> list[bytes]:
    """The words of a response code's data: [COPYUID 5 1:3 10:12] → [b"5", b"1:3", b"10:12"]."""
    return resp.code_data.split()


def uid_mapping(src: bytes, dst: bytes) -> dict[int, int]:
    """COPYUID source and destination sets → {old uid: new uid} (RFC 4315 §3)."""
    old = [u for lo, hi in parse_uid_ranges(src) for u in range(lo, hi + 1)]
    new = [u for lo, hi in parse_uid_ranges(dst) for u in range(lo, hi + 1)]
    return dict(zip(old, new, strict=False))


# -- headers ---------------------------------------------------------------------------------

_MSGID = re.compile(rb"<([^<>\s]+)>")


def message_id_from_header(block: bytes) -> str:
    """The Message-ID (without <>) from a header block such as HEADER.FIELDS (MESSAGE-ID),
    or from a whole message (its header ends at the first empty line).

    Same rule as ``crmail.mail.parse``: the first <...>, or the bare value when it has no
    spaces, so that ids compare with what the store keeps. ``crmail mailbox verify`` reads
    the server's header and the stored bytes with this one function.
    """
    value = b""
    lines = block.replace(b"\r\n", b"\n").split(b"\n")
    for i, line in enumerate(lines):
        if not line:
            break  # the end of the header
        if line[:11].lower() == b"message-id:":
            parts = [line[11:]]
            for more in lines[i + 1 :]:
                if more[:1] in (b" ", b"\t"):
                    parts.append(more)
                else:
                    break
            value = b" ".join(p.strip() for p in parts).strip()
            break
    m = _MSGID.search(value)
    if m:
        return m.group(1)[:990].decode("utf-8", "replace")
    text = value.decode("utf-8", "replace").strip()
    return text if text and " " not in text and len(text) < 990 else ""


# -- SASL ------------------------------------------------------------------------------------


def xoauth2_initial_response(user: str, token: str) -> bytes:
    """The base64 XOAUTH2 initial client response (Google's / Microsoft's XOAUTH2 spec)."""
    raw = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
    return base64.b64encode(raw)
