"""Turning stored raw messages into parsed rows: fields, participants, attachments, threads.

Parsing is CPU work on bytes (``parse.parse_message``); saving is a few statements per
batch. ``parse_stored`` does both in the calling process. ``ParsePipeline`` lets a sync
hand each stored batch to worker processes and keep fetching; the results are saved in
the calling process (the only writer), in the order the batches were handed over. A
message is ``pending`` from the moment it is stored until its results are committed, so
a crash anywhere leaves it ``pending`` and ``parse_pending`` (run at the end of every
sync) parses it later. See docs/decisions/010-parsing-off-the-fetch-path.md.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from django.conf import settings
from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.dispatch import Signal
from django.utils import timezone

from crmail.blobs import store as blob_store
from crmail.config.bulk import datetimes, insert_returning_ids, insert_rows, values_sql
from crmail.events import outbox
from crmail.events.kinds import MessageParsed, MessageProcessed
from crmail.failpoints import failpoint
from crmail.jobs import worker_process
from crmail.jobs.worker_process import worker_pool
from crmail.mail.models import (
    Attachment,
    Compression,
    Message,
    ParseState,
    Participant,
    Thread,
)
from crmail.mail.parse import (
    Digest,
    Headers,
    ParsedMessage,
    Unparseable,
    digest,
    digest_many,
    digest_packed,
    digest_stored,
    headers_packed,
    parse_many,
)
from crmail.mail.store import (
    MissingRaw,
    NewFields,
    Prepared,
    Stored,
    header_section,
    raw_bytes_many,
)

log = logging.getLogger(__name__)

BODY_TEXT_LIMIT = 200_000
# A Date header later than this after crmail first saw the message is not its date.
FUTURE_SLACK = timedelta(days=1)


def dated_ahead(header: datetime | None, seen: datetime | None) -> bool:
    """Whether a Date header is so far after when crmail first saw the message
    (``FUTURE_SLACK``) that the message is dated when first seen instead."""
    return bool(header and seen and header - seen > FUTURE_SLACK)


# A sync hands parsing to worker processes only when it has at least this many new
# messages: starting a worker costs a few tenths of a second.
PIPELINE_MIN_MESSAGES = 400
PENDING_BATCH = 500
CHUNK_BYTES = 8 * 1024 * 1024
IN_FLIGHT_BYTES = 24 * 1024 * 1024

# What parsing one message gives: the result (as saving needs it, when a worker parsed
# it; its header fields alone, when a first sync's worker read them), or why its
# structure could not be read.
Outcome = ParsedMessage | Digest | Headers | Unparseable

# Sent inside the transaction that saves parse results, with ``message_ids`` (those
# parsed; not those that failed). What copies a message's parse results (the inbox's
# locations, decision 038) is written by its receivers in the same commit, or not at all:
# a receiver that raises rolls the results back, and the messages stay ``pending``.
results_saved = Signal()


def parse_stored(messages: Sequence[Message]) -> None:
    """Parse each message from its raw bytes and save what was found, in one transaction.

    A message whose structure cannot be read is marked ``failed`` with the reason; its
    bytes stay, and it is listed as a parse failure. Rerunning replaces earlier results.
    """
    messages = list(messages)
    save_parsed(messages, parse_many(raw_bytes_many(messages)))


def parse_pending(mailbox_id: int | None = None) -> int:
    """Parse the messages still ``pending`` (left by a run that stopped before saving their
    results): all of them, or those with a location in ``mailbox_id``; returns how many."""
    pending = Message.objects.filter(parse_state=ParseState.PENDING)
    if mailbox_id is not None:
        pending = pending.filter(locations__mailbox_id=mailbox_id)
    ids = sorted(set(pending.values_list("pk", flat=True)))
    for start in range(0, len(ids), PENDING_BATCH):
        parse_stored(Message.objects.filter(pk__in=ids[start : start + PENDING_BATCH]))
    return len(ids)


def save_parsed(messages: Sequence[Message | Row], outcomes: Sequence[Outcome]) -> None:
    """Write parse outcomes: fields, participants, attachments, threads; one transaction.

    A ``message.parsed`` event per parsed message commits with them, so its consumers
    (linking) read the participants, and a contact given an address meanwhile misses
    nothing; ``message.processed`` too for those parsed whole (their body text is saved).
    A message read for its headers alone (``Headers``) is ``processing``: its body follows
    through ``process_bodies``. ``results_saved`` is sent before the commit.
    """
    results: list[tuple[Message | Row, Digest | Headers | None]] = []
    for message, outcome in zip(messages, outcomes, strict=True):
        if isinstance(outcome, Unparseable):
            message.parse_state = ParseState.FAILED
            message.parse_problems = str(outcome)[:2000]
            results.append((message, None))
        elif isinstance(outcome, ParsedMessage):
            results.append((message, digest(outcome, BODY_TEXT_LIMIT)))
        else:
            results.append((message, outcome))
    if not results:
        return
    with transaction.atomic():
        ids = [m.pk for m, _ in results]
        Participant.objects.filter(message_id__in=ids).delete()
        Attachment.objects.filter(message_id__in=ids).delete()
        participants: list[list[Any]] = []
        attachments: list[list[Any]] = []
        for message, done in results:
            if done is None:
                continue
            _fill_headers(message, done.parsed)
            if isinstance(done, Headers):
                message.parse_state = ParseState.PROCESSING
            else:
                _fill_body(message, done)
                attachments += _attachment_rows(message.pk, done.parsed)
            participants += _participant_rows(message.pk, done.parsed)
        _assign_threads([m for m, p in results if p is not None])
        _save_fields(PARSED_FIELDS, [m for m, _ in results])
        insert_rows(Participant, PARTICIPANT_COLUMNS, participants)
        insert_rows(Attachment, ATTACHMENT_COLUMNS, attachments)
        parsed_ids = [m.pk for m, parsed in results if parsed is not None]
        whole = [m.pk for m, parsed in results if isinstance(parsed, Digest)]
        results_saved.send(sender=Message, message_ids=parsed_ids)
        outbox.record_many([MessageParsed(message_id=pk) for pk in parsed_ids])
        outbox.record_many([MessageProcessed(message_id=pk) for pk in whole])
        failpoint("parse-save")


PARTICIPANT_COLUMNS = ("message", "role", "address", "name", "valid", "position")
ATTACHMENT_COLUMNS = ("message", "part", "filename", "content_type", "size", "content_id", "inline")


def _participant_rows(pk: int, parsed: ParsedMessage) -> list[list[Any]]:
    return [
        [pk, p.role, p.address[:254], p.name[:300], p.valid, i]
        for i, p in enumerate(parsed.participants)
    ]


def _attachment_rows(pk: int, parsed: ParsedMessage) -> list[list[Any]]:
    return [
        [pk, a.part, a.filename, a.content_type[:200], a.size, a.content_id[:500], a.inline]
        for a in parsed.attachments
    ]


def process_bodies(message_ids: Sequence[int]) -> int:
    """The second half of a first sync's parse (decision 064): for the messages among
    ``message_ids`` still ``processing``, parse their bytes whole and save body text,
    snippet and attachments, with a ``message.processed`` event each, in one transaction.
    Header fields, participants and threads stay as the first half saved them. A message
    whose bytes cannot be read whole is marked ``failed`` (its headers stay); one whose
    bytes are missing is left ``processing`` and said. Returns how many were saved."""
    return save_bodies(*digest_bodies(message_ids))


def digest_bodies(
    message_ids: Sequence[int], ahead: Sequence[int] = ()
) -> tuple[list[Row], list[Digest | Unparseable]]:
    """``process_bodies``' reading and parsing, outside any transaction of its own: the
    messages among ``message_ids`` still ``processing`` whose bytes could be read, and
    what parsing their bodies found (``save_bodies`` writes them). The top-level header
    fields are not read again: the sync saved them, and the problems found reading them,
    which each row carries. The bodies of ``ahead`` (the messages expected next) start
    being parsed in the worker processes meanwhile (``_start_ahead``)."""
    rows = _processing(message_ids)
    handed = _hand_to_workers(rows)
    _start_ahead(ahead)
    given = {r.pk for share in handed for r in share.rows}
    done, outcomes = _digest_here([r for r in rows if r.pk not in given])
    for share in handed:
        try:
            parsed, found = share.rows, share.outcomes()
        except Exception as exc:  # a worker died, or could not read the store: here then
            log.warning("A bodies worker failed (%s); parsing its share here", exc)
            if isinstance(exc, BrokenProcessPool):
                _forget_pool(share.pool)
            parsed, found = _digest_here(share.rows)
        done += parsed
        outcomes += found
    return done, outcomes


def _processing(message_ids: Sequence[int]) -> list[Row]:
    """The messages among ``message_ids`` still ``processing``, as rows with their hash
    and the problems the sync found in their header fields."""
    rows = []
    # Not when crmail first saw them: the dates are the header fields' (the sync saved
    # them), and reading a datetime is most of what reading a row costs.
    for pk, sha256, problems in Message.objects.filter(
        pk__in=list(message_ids), parse_state=ParseState.PROCESSING
    ).values_list("pk", "sha256", "parse_problems"):
        row = Row(pk, None, sha256)
        row.parse_problems = problems
        rows.append(row)
    return rows


def _digest_here(rows: list[Row]) -> tuple[list[Row], list[Digest | Unparseable]]:
    """Read ``rows`` and parse their bodies in this process; those whose bytes are
    missing are left out (``_readable``)."""
    if not rows:
        return [], []
    try:
        raws = raw_bytes_many(rows)
    except MissingRaw:
        rows, raws = _readable(rows)
    return rows, digest_many(raws, BODY_TEXT_LIMIT, headers=False)


# A batch of bodies at least this large is shared among the worker processes, a share
# each; the job's own process, whose threads share one interpreter lock with the search
# index's words and the other consumers, only writes what they found (decision 070).
# Each worker reads its messages from the blob store itself: it is told where they lie,
# not handed their bytes (handing over the bytes cost more than parsing them, decision
# 065).
BODY_WORKERS_FROM = 100


@dataclass(frozen=True)
class _Share:
    """Messages whose bodies a worker parses: their rows, and the worker's future with
    where each row's outcome is in what it returns."""

    rows: list[Row]
    future: Future[list[Any]]
    at: list[int]
    pool: ProcessPoolExecutor

    def outcomes(self) -> list[Digest | Unparseable]:
        """The rows' outcomes, in their order (waits for the worker; raises what it
        raised)."""
        found = self.future.result()
        return [found[i] for i in self.at]


# Bodies started ahead (``_start_ahead``): by the message's hash, the worker's future and
# where the message's outcome is in its result. A parse depends on the bytes alone, so
# one started for a message is right for any message with those bytes, whatever became
# of the batch it was started for. Only the last batch's are kept.
_ahead: dict[str, tuple[Future[list[Any]], int, ProcessPoolExecutor]] = {}
_ahead_lock = threading.Lock()


def _hand_to_workers(rows: list[Row]) -> list[_Share]:
    """Shares of ``rows`` the bodies workers parse: those started ahead, and the rest
    handed over now; rows not handed (a small batch, bytes not in the blob store, no
    workers) are for the caller."""
    with _ahead_lock:
        started = {r.sha256: found for r in rows if (found := _ahead.pop(r.sha256, None))}
    by_future: dict[Future[list[Any]], _Share] = {}
    rest = []
    for row in rows:
        if row.sha256 not in started:
            rest.append(row)
            continue
        future, at, pool = started[row.sha256]
        share = by_future.setdefault(future, _Share([], future, [], pool))
        share.rows.append(row)
        share.at.append(at)
    return [*by_future.values(), *_submit(rest)]


def _start_ahead(message_ids: Sequence[int]) -> None:
    """Hand the bodies of the messages among ``message_ids`` still ``processing`` to the
    workers now, to be taken by a later ``_hand_to_workers`` (the next batch, written
    while these are parsed); what was started ahead before and not taken is let go."""
    shares = _submit(_processing(message_ids)) if message_ids else []
    with _ahead_lock:
        _ahead.clear()
        for share in shares:
            for row, at in zip(share.rows, share.at, strict=True):
                _ahead[row.sha256] = (share.future, at, share.pool)


def _submit(rows: list[Row]) -> list[_Share]:
    """Shares of ``rows`` handed to the bodies workers now (one a worker), each row's
    outcome in its place; none for a small batch or when the workers cannot start, and
    only rows whose bytes are in the blob store."""
    workers = worker_process.default_workers()
    if len(rows) < BODY_WORKERS_FROM or workers < 1:
        return []
    pool = worker_process.shared_pool()
    if pool is None:
        return []
    where = {place[0]: place for place in blob_store.places(r.sha256 for r in rows)}
    stored = [r for r in rows if r.sha256 in where]
    size = max(1, -(-len(stored) // workers))
    handed: list[_Share] = []
    for start in range(0, len(stored), size):
        share = stored[start : start + size]
        try:
            future = pool.submit(
                digest_stored,
                settings.BLOB_URL,
                [where[r.sha256] for r in share],
                int(Compression.ZSTD),  # a plain int: the workers load no Django models
                BODY_TEXT_LIMIT,
                False,  # the bodies alone
            )
        except (BrokenProcessPool, RuntimeError):
            _forget_pool(pool)
            break
        handed.append(_Share(share, future, list(range(len(share))), pool))
    return handed


def _forget_pool(pool: ProcessPoolExecutor) -> None:
    """Let a broken pool go (the next batch starts workers again), and what was started
    ahead on it."""
    with _ahead_lock:
        _ahead.clear()
    worker_process.forget_shared_pool(pool)


def _readable(rows: list[Row]) -> tuple[list[Row], list[bytes]]:
    """Of ``rows``, those whose bytes can be read, with their bytes (one at a time: a
    message whose bytes are missing is said and left ``processing``; `crmail blobs
    verify` names it too)."""
    found: tuple[list[Row], list[bytes]] = ([], [])
    for row in rows:
        try:
            raw = raw_bytes_many([row])[0]
        except MissingRaw:
            log.error("message %s: its bytes are missing; its body is not processed", row.pk)
            continue
        found[0].append(row)
        found[1].append(raw)
    return found


def save_bodies(rows: Sequence[Row], outcomes: Sequence[Digest | Unparseable]) -> int:
    """Write what ``digest_bodies`` found, in one transaction (``fill_bodies``, then
    ``write_bodies``)."""
    return write_bodies(fill_bodies(rows, outcomes))


@dataclass(frozen=True)
class Bodies:
    """What ``write_bodies`` writes: each row with its body's fields, and the rows of
    their attachments."""

    rows: Sequence[Row]
    attachments: list[list[Any]]


def fill_bodies(rows: Sequence[Row], outcomes: Sequence[Digest | Unparseable]) -> Bodies:
    """``rows`` given what parsing their bodies found (no database: a preparing consumer
    does this before its batch's transaction)."""
    attachments: list[list[Any]] = []
    for row, outcome in zip(rows, outcomes, strict=True):
        if isinstance(outcome, Unparseable):
            row.parse_state = ParseState.FAILED
            row.parse_problems = str(outcome)[:2000]
            continue
        _fill_body(row, outcome, row.parse_problems)
        attachments += _attachment_rows(row.pk, outcome.parsed)
    return Bodies(rows, attachments)


def write_bodies(bodies: Bodies) -> int:
    """Write ``bodies`` in one transaction: only over messages still ``processing`` (a
    repeat, or a message deleted or parsed again meanwhile, is left as it is)."""
    rows = bodies.rows
    with transaction.atomic():
        still = set(
            Message.objects.filter(
                pk__in=[r.pk for r in rows], parse_state=ParseState.PROCESSING
            ).values_list("pk", flat=True)
        )
        done = [r for r in rows if r.pk in still]
        Attachment.objects.filter(message_id__in=still).delete()
        _save_fields(BODY_FIELDS, done)
        insert_rows(
            Attachment, ATTACHMENT_COLUMNS, [a for a in bodies.attachments if a[0] in still]
        )
        outbox.record_many(
            [MessageProcessed(message_id=r.pk) for r in done if r.parse_state != ParseState.FAILED]
        )
        failpoint("bodies-save")
    return len(done)


PARSED_FIELDS = (
    "parse_state",
    "parse_problems",
    "message_id",
    "in_reply_to",
    "references",
    "subject",
    "sent_at",
    "date",
    "from_address",
    "from_name",
    "snippet",
    "body_text",
    "has_html",
    "has_attachments",
    "automated",
    "list_id",
    "thread",
)


class Row:
    """A message as saving its parse results needs it: its id, when crmail first saw it
    and when its server received it (where it said), its content hash when known, and
    room for each parsed field (starting as the field's default). Not a model instance:
    the parsing pipeline saves thousands of them in a first sync."""

    __slots__ = (
        "first_seen_at",
        "received_at",
        "pk",
        "sha256",
        *(Message._meta.get_field(n).attname for n in PARSED_FIELDS),
    )

    def __init__(
        self,
        pk: int,
        first_seen_at: datetime | None,
        sha256: str = "",
        received_at: datetime | None = None,
    ) -> None:
        self.pk = pk
        self.first_seen_at = first_seen_at
        self.received_at = received_at
        self.sha256 = sha256
        for name, default in _DEFAULTS:
            setattr(self, name, default)


_DEFAULTS = [
    (Message._meta.get_field(n).attname, Message._meta.get_field(n).get_default())
    for n in PARSED_FIELDS
]


# What the second half of a first sync's parse writes (``save_bodies``).
BODY_FIELDS = (
    "parse_state",
    "parse_problems",
    "snippet",
    "body_text",
    "has_html",
    "has_attachments",
)


def _save_fields(names: Sequence[str], messages: list[Message | Row]) -> None:
    """The fields ``names`` of each message: one prepared UPDATE per message, sent with
    executemany.

    ``bulk_update`` builds a CASE expression per field over the whole batch; on a first
    sync that cost more than parsing itself.
    """
    if not messages:
        return
    fields = [Message._meta.get_field(name) for name in names]
    connection = connections[router.db_for_write(Message)]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    # Identifiers from the model, quoted; every value is a parameter.
    sql = f"UPDATE {quote(Message._meta.db_table)} SET {assignments} WHERE {quote('id')} = %s"  # noqa: S608
    rows = [
        [*values, m.pk] for m, values in zip(messages, _db_values(names, messages), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _db_values(names: Sequence[str], messages: Sequence[Message | Row]) -> list[list[Any]]:
    """The fields ``names`` of each message as the database takes them: only datetimes
    need preparing; the other values are str, bool, int or None already."""
    fields = [Message._meta.get_field(name) for name in names]
    connection = connections[router.db_for_write(Message)]
    dated = {f.attname for f in fields if f.get_internal_type() == "DateTimeField"}
    as_db = datetimes(connection)
    return [
        [
            as_db(getattr(m, f.attname)) if f.attname in dated else getattr(m, f.attname)
            for f in fields
        ]
        for m in messages
    ]


def _fill_headers(message: Message | Row, parsed: ParsedMessage) -> None:
    """Header fields and the problems found reading them (the state is the caller's:
    ``processing``, or that of the whole parse, ``_fill_body``).

    The message's date, by which lists and timelines order it, is its Date header unless
    that is later than when crmail first saw the message by more than ``FUTURE_SLACK``
    (a sender's clock set years ahead would otherwise keep it at the top of every list).
    Then, as without a Date header, it is when its server received it (IMAP's
    INTERNALDATE and the providers' like), so an old message keeps its place in a first
    sync; where the server did not say (POP3, a forwarded copy), the date of its topmost
    Received field; failing both (or where each is as far ahead), when crmail first saw
    it. ``sent_at`` keeps the header as it was."""
    seen = message.first_seen_at or timezone.now()
    date = None if dated_ahead(parsed.date, seen) else parsed.date
    arrived = next(
        (t for t in (message.received_at, parsed.received) if t and not dated_ahead(t, seen)),
        None,
    )
    message.parse_problems = "\n".join(parsed.problems)[:2000]
    message.message_id = parsed.message_id[:500]
    message.in_reply_to = parsed.in_reply_to[:500]
    message.references = " ".join(parsed.references)[:10000]
    message.subject = parsed.subject[:2000]
    message.sent_at = parsed.date
    message.date = date or arrived or seen
    sender = next((p for p in parsed.participants if p.role == "from"), None)
    message.from_address = sender.address[:254] if sender else ""
    message.from_name = sender.name[:300] if sender else ""
    message.automated = parsed.automated
    message.list_id = parsed.list_id[:300]


def _fill_body(message: Message | Row, done: Digest, headers: str = "") -> None:
    """Body text, snippet and attachments' flag; the state and problems of the whole
    (``headers``: the problems found reading the header fields, when ``done`` is a parse
    of the bodies alone)."""
    parsed = done.parsed
    problems = [headers, *parsed.problems] if headers else parsed.problems
    message.parse_state = ParseState.PARTIAL if problems else ParseState.PARSED
    message.parse_problems = "\n".join(problems)[:2000]
    message.snippet = done.snippet
    message.body_text = done.body_text
    message.has_html = done.has_html
    message.has_attachments = any(not a.inline for a in parsed.attachments)


def thread_subject(subject: str) -> str:
    """The subject without reply and forward prefixes, for naming threads."""
    s = subject.strip()
    while True:
        lowered = s.lower()
        for prefix in ("re:", "fw:", "fwd:", "aw:", "wg:", "sv:", "vs:", "antw:"):
            if lowered.startswith(prefix):
                s = s[len(prefix) :].lstrip()
                break
        else:
            return s


def _assign_threads(messages: list[Message | Row]) -> list[int]:
    """Join each message to the thread of the messages it refers to, or start one; returns
    the ids of the threads started.

    A parent that arrives after its replies adopts their thread, so order does not matter.
    New threads are inserted together, and the newest date of each existing thread is
    raised with one prepared UPDATE: a few statements per batch, not two per thread.
    """
    if not messages:
        return []
    wanted = {ref for m in messages for ref in [m.in_reply_to, *m.references.split()] if ref}
    own_ids = {m.message_id for m in messages if m.message_id}
    connection = connections[router.db_for_write(Thread)]
    by_msgid: dict[str, int] = {}
    children: dict[str, int] = {}
    for msgid, parent, thread_id in _related(connection, wanted, own_ids):
        if msgid:
            by_msgid[msgid] = thread_id
        if parent:
            children[parent] = thread_id
    # New threads get negative placeholders until they are inserted.
    fresh: dict[int, str] = {}  # placeholder -> subject
    now = timezone.now()
    for message in sorted(messages, key=lambda m: m.date or now):
        refs = [message.in_reply_to, *reversed(message.references.split())]
        thread_id = next((by_msgid[r] for r in refs if r and r in by_msgid), None)
        if thread_id is None and message.message_id in children:
            thread_id = children[message.message_id]
        if thread_id is None:
            thread_id = -(len(fresh) + 1)
            fresh[thread_id] = thread_subject(message.subject)[:2000]
        message.thread_id = thread_id
        if message.message_id:
            by_msgid[message.message_id] = thread_id
    latest: dict[int, datetime] = {}
    for m in messages:
        if m.date and (m.thread_id not in latest or m.date > latest[m.thread_id]):
            latest[m.thread_id] = m.date
    as_db = datetimes(connection)
    started = insert_returning_ids(
        Thread,
        ("subject", "last_message_at"),
        [(subject, as_db(latest.get(key))) for key, subject in fresh.items()],
    )
    ids = dict(zip(fresh, started, strict=True))
    for m in messages:
        if m.thread_id < 0:
            m.thread_id = ids[m.thread_id]
    existing = [(as_db(when), pk) for pk, when in latest.items() if pk > 0]
    if existing:
        quote = connection.ops.quote_name
        table, column = quote(Thread._meta.db_table), quote("last_message_at")
        sql = (
            f"UPDATE {table} SET {column} = %s WHERE {quote('id')} = %s "  # noqa: S608
            f"AND ({column} IS NULL OR {column} < %s)"
        )
        with connection.cursor() as cursor:
            cursor.executemany(sql, [(when, pk, when) for when, pk in existing])
    return started


def _related(
    connection: BaseDatabaseWrapper, wanted: set[str], own_ids: set[str]
) -> list[tuple[str, str, int]]:
    """(Message-ID, In-Reply-To, thread) of the threaded messages whose Message-ID is
    among ``wanted`` or that reply to one of ``own_ids``: each list one parameter (a first
    sync's batch refers to thousands of Message-IDs; as many parameters, building and
    converting them cost several times what the database takes to answer)."""
    table = connection.ops.quote_name(Message._meta.db_table)
    among_wanted, wanted_params = values_sql(sorted(wanted), "text", connection.alias)
    among_own, own_params = values_sql(sorted(own_ids), "text", connection.alias)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT message_id, in_reply_to, thread_id FROM {table} "  # noqa: S608
            f"WHERE thread_id IS NOT NULL AND (message_id {among_wanted} "
            f"OR in_reply_to {among_own})",
            [*wanted_params, *own_params],
        )
        return cursor.fetchall()


# -- header fields before the store (decision 065) ----------------------------------------

# What a new message's INSERT carries when its header fields were read before it was
# stored: PARSED_FIELDS without the body's.
HEADER_FIELDS = (
    "parse_state",
    "parse_problems",
    *(f for f in PARSED_FIELDS if f not in BODY_FIELDS),
)


class HeadersFirst:
    """A batch whose header fields a parsing worker read before it was stored (decision
    065): its new messages are inserted with them, their thread and ``processing``
    (``failed`` when the header section cannot be read), so the sync writes each row
    once; ``saved`` then adds their participants and a ``message.parsed`` event each,
    in the same transaction. The bodies follow after the sync, as for decision 064.

    ``hashes`` and ``outcomes``: the batch's content hashes and what reading each one's
    header section gave, in the same order."""

    def __init__(self, prepared: Prepared, outcomes: Sequence[Headers | Unparseable]) -> None:
        self._outcomes = dict(zip(prepared.hashes, outcomes, strict=True))
        self._arrived = prepared.arrived
        self._rows: dict[str, Row] = {}
        self._started: list[int] = []

    def describe(self, digests: list[str], first_seen_at: datetime) -> NewFields:
        """``store.Describe``: the columns of the new rows (threads are started here)."""
        rows = {d: Row(0, first_seen_at, d, self._arrived.get(d)) for d in digests}
        for key, row in rows.items():
            outcome = self._outcomes[key]
            if isinstance(outcome, Unparseable):
                row.parse_state = ParseState.FAILED
                row.parse_problems = str(outcome)[:2000]
            else:
                _fill_headers(row, outcome.parsed)
                row.parse_state = ParseState.PROCESSING
        self._started = _assign_threads(
            [r for r in rows.values() if r.parse_state != ParseState.FAILED]
        )
        self._rows = rows
        values = _db_values(HEADER_FIELDS, list(rows.values()))
        return NewFields(
            columns=HEADER_FIELDS,
            values=dict(zip(rows, values, strict=True)),
            state={d: (r.parse_state, r.thread_id, r.date) for d, r in rows.items()},
        )

    def saved(self, stored: Sequence[Stored]) -> list[int]:
        """After the INSERT: the participants of the messages this batch inserted and a
        ``message.parsed`` event each; threads started for contents another process
        stored meanwhile go. Returns the ids of the messages read."""
        ours = {s.sha256: s.pk for s in stored if s.packed is not None and s.sha256 in self._rows}
        read: list[int] = []
        participants: list[list[Any]] = []
        for key, pk in ours.items():
            outcome = self._outcomes[key]
            if isinstance(outcome, Unparseable):
                continue
            read.append(pk)
            participants += _participant_rows(pk, outcome.parsed)
        used = {self._rows[d].thread_id for d in ours}
        unused = [t for t in self._started if t not in used]
        if unused:
            Thread.objects.filter(pk__in=unused).delete()
        insert_rows(Participant, PARTICIPANT_COLUMNS, participants)
        outbox.record_many([MessageParsed(message_id=pk) for pk in read])
        return read


# -- parsing beside the fetch ------------------------------------------------------------


class ParsePipeline:
    """Parse stored batches in worker processes while the caller goes on fetching.

    Workers start at ``start()``; until then (small syncs) batches are parsed in the
    calling process as they are submitted.

    ``submit`` hands over the ``pending`` messages of a stored batch with their raw bytes
    and saves the results of earlier batches that are ready; ``finish`` waits for and
    saves the rest. Used as a context manager, a normal exit or an ``Exception``
    finishes (stored mail gets parsed even when the server went away mid-sync); anything
    else (the process being interrupted) cancels, leaving the unsaved messages
    ``pending`` for ``parse_pending``. With ``workers=0``, or when no worker can start,
    batches are parsed in the calling process too. Workers read a message's header
    fields and participants only (``parse.headers_packed``), and the message is saved
    ``processing``: its body follows after the sync (``process_bodies``, decision 064);
    a batch parsed in the calling process is parsed whole. Workers get the stored form of each
    message (zstd, mostly smaller than the raw bytes) in chunks of about ``CHUNK_BYTES``;
    at most ``IN_FLIGHT_BYTES`` per worker are handed over and not yet saved (a submit
    waits for the oldest chunk beyond that), so memory stays bounded when parsing is the
    slower side.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = worker_process.default_workers() if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self._queue: deque[tuple[list[Row], int, Future[list[Outcome]]]] = deque()
        self._in_flight = 0  # bytes handed to the workers and not saved yet
        self.saved = 0

    def __enter__(self) -> ParsePipeline:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.finish()
        elif issubclass(kind, Exception):
            try:
                self.finish()
            except Exception:
                log.exception("Saving parse results after a failed sync; left pending")
                self.close()
        else:
            self.close()

    def start(self) -> None:
        """Start the workers now (they take a moment) rather than at the first batch.

        A pool starts its processes at its first task: an empty one is handed over here,
        so that they start, and load the parser, while the caller goes on (a first sync's
        first batch waited about 0.09 s for them otherwise)."""
        if self._pool is None and self.workers > 0:
            self._pool = worker_pool(self.workers, "parsing")
            if self._pool is None:
                self.workers = 0
                return
            try:
                self._pool.submit(headers_packed, [])
            except BrokenProcessPool:
                self._broken()

    def submit(
        self, messages: Sequence[Message | Stored], forms: Sequence[tuple[bytes, int]]
    ) -> None:
        """Queue the ``pending`` ones among stored ``messages`` (with their stored forms,
        (bytes, compression), in the same order) for parsing; each message once."""
        batch: dict[int, tuple[Message, tuple[bytes, int]]] = {}
        for message, form in zip(messages, forms, strict=True):
            if message.parse_state == ParseState.PENDING and message.pk not in batch:
                batch[message.pk] = (message, form)
        if not batch:
            return
        if self._pool is None:
            todo = [
                Row(m.pk, m.first_seen_at, received_at=m.received_at) for m, _ in batch.values()
            ]
            items = [(data, c == Compression.ZSTD) for _, (data, c) in batch.values()]
            self._save(todo, digest_packed(items, BODY_TEXT_LIMIT))
            return
        chunk: list[Row] = []
        items = []
        size = 0
        for message, (stored, compression) in batch.values():
            # Only what saving needs: the row and its bytes go once handed over.
            chunk.append(Row(message.pk, message.first_seen_at, received_at=message.received_at))
            items.append((stored, compression == Compression.ZSTD))
            size += len(stored)
            if size >= CHUNK_BYTES:
                self._hand_over(chunk, items, size)
                chunk, items, size = [], [], 0
        if chunk:
            self._hand_over(chunk, items, size)
        while self._queue and self._queue[0][2].done():
            self._save_next()

    def _hand_over(self, chunk: list[Row], items: list[tuple[bytes, bool]], size: int) -> None:
        while self._queue and self._in_flight + size > IN_FLIGHT_BYTES * max(self.workers, 1):
            self._save_next()
        if self._pool is not None:
            try:
                # Header fields only: the bodies follow after the sync (decision 064).
                future = self._pool.submit(headers_packed, items)
            except BrokenProcessPool:
                self._broken()
            else:
                self._queue.append((chunk, size, future))
                self._in_flight += size
                return
        self._save(chunk, digest_packed(items, BODY_TEXT_LIMIT))

    def read_headers(self, raws: Sequence[bytes]) -> Future[list[Headers | Unparseable]] | None:
        """The header fields of a batch about to be stored (``HeadersFirst``), read by a
        worker from each message's header section; None without workers."""
        if self._pool is None:
            return None
        try:
            return self._pool.submit(headers_packed, [(header_section(r), False) for r in raws])
        except BrokenProcessPool:
            self._broken()
            return None

    def finish(self) -> None:
        """Wait for every submitted batch and save its results."""
        try:
            while self._queue:
                self._save_next()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers; batches not saved yet stay ``pending``."""
        for _, _, future in self._queue:
            future.cancel()
        self._queue.clear()
        self._in_flight = 0
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _save_next(self) -> None:
        """Save the oldest chunk (waiting for it) and every chunk after it that is ready,
        in one transaction: on SQLite each commit is a sync of the write-ahead log."""
        messages: list[Row] = []
        outcomes: list[Outcome] = []
        while self._queue and (not messages or self._queue[0][2].done()):
            chunk, size, future = self._queue.popleft()
            self._in_flight -= size
            try:
                outcomes += future.result()
            except Exception as exc:
                # A worker died (killed, out of memory) or failed: parse here, never lose
                # the chunk.
                if isinstance(exc, BrokenProcessPool | CancelledError):
                    self._broken()
                else:
                    log.warning("A parsing worker failed (%s); parsing here", type(exc).__name__)
                outcomes += parse_many(raw_bytes_many(chunk))
            messages += chunk
        self._save(messages, outcomes)

    def _broken(self) -> None:
        log.warning("A parsing worker stopped; parsing in this process from now on")
        self.workers = 0
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _save(self, messages: list[Row], outcomes: list[Outcome]) -> None:
        save_parsed(messages, outcomes)
        self.saved += len(messages)
