"""Storing raw messages by content: compressed when it pays, never twice.

``store_raw`` is the first step for every message from every source: the bytes are kept
before anything tries to understand them, so nothing a parser chokes on is lost. They go
to the blob store (``crmail.blobs``, decision 050), a pack per batch made durable before
the ``Message`` rows and the pack's index rows commit together; ``raw_bytes`` is the one
way to read them back. Messages stored by releases before the blob store keep their bytes
in ``MessageRaw`` rows until ``crmail blobs migrate`` moves them (``migrate_raw_rows``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from typing import Any

import zstandard
from django.db import connections, router, transaction
from django.utils import timezone

from crmail.blobs import store as blob_store
from crmail.blobs.packs import Item
from crmail.config.bulk import datetimes, inserts
from crmail.failpoints import failpoint
from crmail.mail.models import Compression, Message, MessageRaw, ParseState, WaitingBody

# Level 1, not 3: on the benchmark mailboxes it compresses 1.5-3.4 times faster for 1-2 %
# more bytes (docs/decisions/010). Any level decompresses the same way.
ZSTD_LEVEL = 1
MIN_SAVING = 0.9  # keep the compressed form only when it is at most 90 % of the original
# zstandard's compressor and decompressor objects must not be used by two threads at once
# (huey's job threads and the IDLE watcher's sync threads store mail side by side): shared,
# they fail with "Src size is incorrect" or crash the process. Each thread makes its own.
_local = threading.local()


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class _Zstd:
    """This thread's zstd objects."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()


def _zstd() -> _Zstd:
    zstd: _Zstd | None = getattr(_local, "zstd", None)
    if zstd is None:
        zstd = _local.zstd = _Zstd()
    return zstd


def pack(raw: bytes) -> tuple[bytes, int]:
    """The stored form of ``raw`` and its compression (mail attachments rarely compress)."""
    packed = _zstd().compressor.compress(raw)
    if len(packed) <= len(raw) * MIN_SAVING:
        return packed, Compression.ZSTD
    return raw, Compression.NONE


def unpack(stored: bytes | memoryview, compression: int) -> bytes:
    data = bytes(stored)
    if compression == Compression.ZSTD:
        return _zstd().decompressor.decompress(data)
    return data


def raw_bytes(message: Message) -> bytes:
    """The message exactly as the server gave it."""
    return raw_bytes_many([message])[0]


def _known_hash(message: Any) -> str:
    """The content hash ``message`` carries already ("" when a model instance was loaded
    without it: reading it would cost a query per message)."""
    if hasattr(message, "__dict__"):
        return message.__dict__.get("sha256") or ""
    return getattr(message, "sha256", "") or ""


class MissingRaw(LookupError):
    """A message whose bytes are in neither the blob store nor a ``MessageRaw`` row."""


def raw_bytes_many(messages: Sequence[Any]) -> list[bytes]:
    """``raw_bytes`` of each message, in order: from the blob store, or a ``MessageRaw``
    row for a message not moved there yet. Raises ``MissingRaw`` for one in neither."""
    wanted = [m for m in messages if getattr(m, "packed", None) is None]
    # The content hashes, read in one query for rows loaded without them.
    digests = {m.pk: _known_hash(m) for m in wanted}
    unknown = [pk for pk, digest in digests.items() if not digest]
    for start in range(0, len(unknown), 500):
        digests.update(
            Message.objects.filter(pk__in=unknown[start : start + 500]).values_list("pk", "sha256")
        )
    in_store = blob_store.read_many(digests.values())
    old = [m.pk for m in wanted if digests[m.pk] not in in_store]
    stored: dict[int, tuple[bytes, int]] = {}
    for start in range(0, len(old), 500):
        rows = MessageRaw.objects.filter(message_id__in=old[start : start + 500])
        stored.update(
            (pk, (raw, compression))
            for pk, raw, compression in rows.values_list("message_id", "raw", "compression")
        )
    lacking = [m.pk for m in wanted if digests[m.pk] not in in_store and m.pk not in stored]
    for start in range(0, len(lacking), 500):
        rows = WaitingBody.objects.filter(message_id__in=lacking[start : start + 500])
        stored.update(
            (pk, (bytes(headers), Compression.NONE))
            for pk, headers in rows.values_list("message_id", "headers")
        )
    found = []
    for m in messages:
        form = getattr(m, "packed", None) or in_store.get(digests.get(m.pk, "")) or stored.get(m.pk)
        if form is None:
            raise MissingRaw(f"message {m.pk} has no stored bytes")
        found.append(unpack(*form))
    return found


# --- bodies that wait (SPEC F11, decision 058) -------------------------------------------

# A header section longer than this is cut: what is kept of a message whose body waits.
HEADERS_LIMIT = 256 * 1024


def header_section(raw: bytes) -> bytes:
    """The header section of ``raw`` with the blank line that ends it (all of it when there
    is none), at most ``HEADERS_LIMIT`` bytes: a message as it reads without its body."""
    # Neither search reads past the limit, nor the bare-LF one past the CRLF blank line:
    # a first sync cuts the header section of every message it fetches.
    crlf = raw.find(b"\r\n\r\n", 0, HEADERS_LIMIT)
    lf = raw.find(b"\n\n", 0, crlf + 1 if crlf >= 0 else HEADERS_LIMIT)
    if lf >= 0:
        return raw[: lf + 2]
    if crlf >= 0:
        return raw[: crlf + 4]
    return raw[:HEADERS_LIMIT]


def waiting_ids(message_ids: Iterable[int]) -> set[int]:
    """Those of ``message_ids`` whose body waits."""
    ids = list(message_ids)
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        found.update(
            WaitingBody.objects.filter(message_id__in=ids[start : start + 500]).values_list(
                "message_id", flat=True
            )
        )
    return found


def body_waits(message: Message | int) -> bool:
    return bool(waiting_ids([message if isinstance(message, int) else message.pk]))


class NotTheSameMessage(ValueError):
    """Bytes fetched for a waiting body that are not the message crmail saw."""


def store_bodies(bodies: dict[int, bytes]) -> list[int]:
    """Store the whole bytes of messages whose body waited (``bodies``: message id -> raw
    bytes as fetched again), each checked against the SHA-256 the message is known by: one
    pack, then, in the caller's transaction, its index rows; the messages' waiting rows go
    and they are parsed again (``pending``). Returns the ids stored; raises
    ``NotTheSameMessage`` when bytes differ from the message crmail saw."""
    rows = dict(
        Message.objects.filter(pk__in=list(bodies), waiting_body__isnull=False).values_list(
            "pk", "sha256"
        )
    )
    items: dict[str, Item] = {}
    for pk, digest in rows.items():
        raw = bodies[pk]
        if content_hash(raw) != digest:
            raise NotTheSameMessage(
                f"The server's copy of message {pk} is not the message crmail saw "
                "arrive: its body was not stored."
            )
        form, compression = pack(raw)
        items[digest] = Item(digest, form, compression, len(raw))
    if not items:
        return []
    written = blob_store.write(list(items.values()))
    with transaction.atomic():
        blob_store.record(written)
        WaitingBody.objects.filter(message_id__in=list(rows)).delete()
        Message.objects.filter(pk__in=list(rows)).update(parse_state=ParseState.PENDING)
    return list(rows)


@dataclass(frozen=True)
class Prepared:
    """Raw messages as their content hashes, sizes and stored forms, worked out before
    the database is asked (``prepare``): by another thread while the sync fetches on. The
    raw bytes themselves are not kept: a stored form is what the rest of the way needs."""

    hashes: list[str]
    sizes: list[int]
    forms: dict[str, tuple[bytes, int]]  # by hash, each content once
    # By hash, when the server received it (``Message.received_at``), where it says.
    arrived: dict[str, datetime] = field(default_factory=dict)

    def form_of(self, index: int) -> tuple[bytes, int]:
        """The stored form (bytes, compression) of the ``index``-th message."""
        return self.forms[self.hashes[index]]


def prepare(raws: Iterable[bytes], arrived: Iterable[datetime | None] | None = None) -> Prepared:
    """Hash and compress ``raws``: CPU only, no database, safe in any thread (hashlib and
    zstandard let other threads run while they work on a message). ``arrived``: when the
    server received each one, in the same order, where it says (a content found twice
    keeps the first)."""
    hashes: list[str] = []
    sizes: list[int] = []
    forms: dict[str, tuple[bytes, int]] = {}
    times: dict[str, datetime] = {}
    for raw, when in zip(raws, arrived or repeat(None), strict=False):
        digest = content_hash(raw)
        hashes.append(digest)
        sizes.append(len(raw))
        if digest not in forms:
            forms[digest] = pack(raw)
            if when is not None:
                times[digest] = when
    return Prepared(hashes, sizes, forms, times)


@dataclass(slots=True)
class Stored:
    """A stored message as the sync needs it, without building a model instance (a first
    sync stores thousands): its row's id and state, and, when this call stored it, its
    stored form (``packed``)."""

    pk: int
    sha256: str
    size: int
    first_seen_at: datetime
    parse_state: str = ParseState.PENDING
    thread_id: int | None = None
    date: datetime | None = None
    received_at: datetime | None = None
    packed: tuple[bytes, int] | None = None
    body_waits: bool = False  # past the quota: its header section only (decision 058)


_STORED_COLUMNS = (
    "pk",
    "sha256",
    "size",
    "first_seen_at",
    "parse_state",
    "thread_id",
    "date",
    "received_at",
)


@dataclass(frozen=True, slots=True)
class NewFields:
    """What a caller knows of new contents before they are stored, written by the same
    INSERT (a first sync's header fields, decision 065): ``columns``, Message attnames;
    ``values``, per content hash, one value each, ready for the database; ``state``, per
    content hash, the row's (parse state, thread id, date) as ``Stored`` carries them."""

    columns: tuple[str, ...]
    values: dict[str, list[Any]]
    state: dict[str, tuple[str, int | None, datetime | None]]


# Called with the hashes of the contents about to be inserted (in order) and their
# first_seen_at, inside the transaction that inserts them.
Describe = Callable[[list[str], datetime], NewFields]


def store_rows(
    raws: Iterable[bytes] | Prepared, room: int | None = None, describe: Describe | None = None
) -> list[Stored]:
    """Store each raw message unless its content is stored already; one row per input.

    New rows start as ``pending``: parsing is a later step, off the fetch path; they carry
    their stored form in ``packed``. Safe beside another process storing the same content:
    whichever commits first wins, the other takes its row. ``raws`` may come ``prepare``d
    (hashed and compressed elsewhere).

    ``room``: bytes left below the organisation's quota (SPEC F11). New contents that come
    once it is used up keep only their header section (a ``WaitingBody``), ``body_waits``
    set and ``packed`` that header section: their body waits on the server. Contents
    stored already are never held back.

    ``describe``: the other columns of the new rows, asked for once the new contents are
    known (``NewFields``); without it they start ``pending`` with the defaults.
    """
    ready = raws if isinstance(raws, Prepared) else prepare(raws)
    rows = Message.objects.filter(sha256__in=set(ready.hashes)).values_list(*_STORED_COLUMNS)
    known = {row[1]: Stored(*row) for row in rows}
    fresh = {d: n for d, n in zip(ready.hashes, ready.sizes, strict=True) if d not in known}
    if fresh:
        known.update(_insert_new(fresh, ready.forms, room, describe, ready.arrived))
    return [known[d] for d in ready.hashes]


def store_many(raws: Iterable[bytes] | Prepared, room: int | None = None) -> list[Message]:
    """``store_rows`` as model instances: those this call stored with their stored form in
    ``packed`` (for parsing them without reading them back) and ``body_waits``, the others
    as loaded."""
    rows = store_rows(raws, room)
    loaded = Message.objects.in_bulk([r.pk for r in rows if r.packed is None])
    found = []
    for r in rows:
        if r.packed is None:
            found.append(loaded[r.pk])
            continue
        message = Message(
            pk=r.pk,
            sha256=r.sha256,
            size=r.size,
            first_seen_at=r.first_seen_at,
            received_at=r.received_at,
        )
        message.packed, message.body_waits = r.packed, r.body_waits
        found.append(message)
    return found


def store_raw(raw: bytes) -> Message:
    return store_many([raw])[0]


def _within(fresh: dict[str, int], room: int | None) -> set[str]:
    """The contents of ``fresh`` (in order) whose bodies wait: those that come once the
    ``room`` left is used up (the one that crosses the quota is stored: storage is full
    once it has reached the quota); None: no limit."""
    if room is None:
        return set()
    used = 0
    digests = list(fresh)
    for index, digest in enumerate(digests):
        if used >= room:
            return set(digests[index:])
        used += fresh[digest]
    return set()


def _insert_new(
    fresh: dict[str, int],
    forms: dict[str, tuple[bytes, int]],
    room: int | None = None,
    describe: Describe | None = None,
    arrived: dict[str, datetime] | None = None,
) -> dict[str, Stored]:
    """Write the contents (``fresh``: hash -> size; ``forms``: their stored forms) as one
    pack of the blob store, then INSERT a Message row per content (with when its server
    received it, from ``arrived``, and what ``describe`` gives) and the pack's index rows
    in one transaction; prepared statements, no model building per row. Contents another
    process stored meanwhile are read back instead. Contents past ``room`` keep their
    header section only (``store_many``)."""
    arrived = arrived or {}
    now = timezone.now()
    waits = _within(fresh, room)
    packed = {digest: forms[digest] for digest in fresh if digest not in waits}
    headers = {digest: header_section(unpack(*forms[digest])) for digest in waits}
    # Durable before any row naming it commits (decision 050; inside
    # ``blob_store.overlapped``, written meanwhile).
    written = (
        blob_store.write(
            [Item(d, form, compression, fresh[d]) for d, (form, compression) in packed.items()]
        )
        if packed
        else None
    )
    connection = connections[router.db_for_write(Message)]
    created_at = Message._meta.get_field("first_seen_at").get_db_prep_save(now, connection)
    as_db = datetimes(connection)
    ours: dict[str, int] = {}
    with transaction.atomic(using=connection.alias):
        digests = list(fresh)
        extra = describe(digests, now) if describe is not None else None
        names = (*_VARIABLE, *(extra.columns if extra is not None else ()))
        quote = connection.ops.quote_name
        returned = inserts(
            Message,
            names,
            [
                (
                    d,
                    fresh[d],
                    created_at,
                    as_db(arrived.get(d)),
                    *(extra.values[d] if extra else ()),
                )
                for d in digests
            ],
            f" ON CONFLICT DO NOTHING RETURNING {quote('id')}, {quote('sha256')}",
            constants=_defaults(names),
        )
        ours.update((digest, pk) for pk, digest in returned)
        if written is not None:
            blob_store.record(written)
        if waits:
            WaitingBody.objects.bulk_create(
                [WaitingBody(message_id=ours[d], headers=headers[d]) for d in waits if d in ours]
            )
        failpoint("index-commit")
    stored = {
        digest: Stored(
            pk,
            digest,
            fresh[digest],
            now,
            *(extra.state[digest] if extra else (ParseState.PENDING, None, None)),
            arrived.get(digest),
            packed=(headers[digest], Compression.NONE) if digest in waits else packed[digest],
            body_waits=digest in waits,
        )
        for digest, pk in ours.items()
    }
    theirs = [d for d in fresh if d not in ours]
    if theirs:
        rows = Message.objects.filter(sha256__in=theirs).values_list(*_STORED_COLUMNS)
        stored.update((row[1], Stored(*row)) for row in rows)
    return stored


# Columns every new Message row gets as parameters; the others, unless a caller gives them
# (``NewFields``), get their defaults as SQL literals, so each row needs four parameters.
_VARIABLE = ("sha256", "size", "first_seen_at", "received_at")


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if value in ("", ParseState.PENDING.value):
        return f"'{value!s}'"
    raise ValueError(f"no SQL literal for the default {value!r}")


def _defaults(given: tuple[str, ...]) -> list[tuple[str, str]]:
    """The Message fields not in ``given`` (but its id), each with its default as SQL."""
    named = {Message._meta.get_field(n) for n in given}
    return [
        (f.name, _literal(f.get_default()))
        for f in Message._meta.concrete_fields
        if f.name != "id" and f not in named
    ]


# --- moving, checking and collecting what the blob store holds --------------------------


def migrate_raw_rows(batch: int = 500, progress: Callable[[int], None] | None = None) -> int:
    """Move the bytes of ``MessageRaw`` rows into the blob store, a pack per ``batch``
    rows, each batch committed on its own (mail keeps being read and stored meanwhile:
    a message is read from the store once its batch commits, from its row before).
    Returns how many messages moved."""
    moved = 0
    while True:
        rows = list(
            MessageRaw.objects.order_by("message_id").values_list(
                "message_id", "message__sha256", "message__size", "raw", "compression"
            )[:batch]
        )
        if not rows:
            return moved
        items = {
            digest: Item(digest, bytes(raw), compression, size)
            for _, digest, size, raw, compression in rows
        }
        written = blob_store.write(list(items.values()))
        with transaction.atomic():
            blob_store.record(written)
            MessageRaw.objects.filter(message_id__in=[r[0] for r in rows]).delete()
        moved += len(rows)
        if progress:
            progress(moved)


def without_bytes(limit: int = 100) -> tuple[int, list[int]]:
    """How many messages have their bytes neither in the blob store nor in a
    ``MessageRaw`` row (nor wait for their body), and the ids of the first ``limit``."""
    from crmail.blobs.models import Blob

    missing = (
        Message.objects.exclude(sha256__in=Blob.objects.values("sha256"))
        .exclude(pk__in=MessageRaw.objects.values("message_id"))
        .exclude(pk__in=WaitingBody.objects.values("message_id"))
    )
    return missing.count(), list(missing.order_by("pk").values_list("pk", flat=True)[:limit])


def _live(digests: list[str]) -> set[str]:
    return set(Message.objects.filter(sha256__in=digests).values_list("sha256", flat=True))


def collect_blobs(among: Iterable[str] | None = None) -> blob_store.Collected:
    """Remove from the blob store the bytes of messages that are gone (``among`` those
    digests only, when given): no deleted message's mail stays on disk."""
    return blob_store.collect(_live, among)
