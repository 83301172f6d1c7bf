"""The search index: one document per parsed message, on SQLite or PostgreSQL (decision 027).

A document has five fields: the subject, the senders (From, Sender, Reply-To: names and
addresses), the recipients (To, Cc, Bcc), the body text and the attachments' names; and
the message's year and month as two tokens no one can type (``_y2024 _m202403``, UTC;
``date_tokens``), so that a date range is one more term of the index's own query
(decision 046). Both
databases are given the same words, cut by crmail (``words``): text is put in
compatibility form (NFKD), its Latin, Greek and Cyrillic accents (the combining marks
U+0300 to U+036F) are dropped, it is case-folded (``ß`` becomes ``ss``), and a word is a run
of letters and digits. So ``Café`` is found by ``cafe`` and ``café``, ``Straße`` by
``strasse``, and a run of Chinese or Japanese characters (no spaces between words) is one
word: ``日本`` finds ``日本`` written alone, and ``日本語`` by prefix, not ``語`` inside it.

- SQLite: an FTS5 table ``search_fts`` (rowid = message id; unicode61 splits on the spaces
  crmail puts between words and keeps ``_`` in a token; the date tokens in a sixth
  column, ``dates``), ranked by bm25 (the dates weigh nothing).
- PostgreSQL: ``search_document`` (message id, a ``tsvector`` of the ``simple``
  configuration, ``document``: the words, the fields weighted A (subject), B (senders),
  C (recipients) and D (body and attachment names), ranked by ``ts_rank``; and
  ``extra``: lexemes of its own, typed by no one, each starting with ``_``: the date
  tokens, ``_a`` when the message has attachments, its id's buckets
  ``_b<id // BUCKET>`` and ``_c<id // COARSE>``, and the pairs; one GIN index on both
  columns), so that the index itself narrows a search to an attachment, a date range or
  the newest messages (decision 047) and the ranked document stays the words alone
  (decision 051). ``search_vocab`` holds every word the index has held (for the words a
  prefix is the start of; on SQLite an fts5vocab table).

The index is fed after parse results commit (``receivers``), one read and one batched
write per batch; ``reindex`` rebuilds it. Deleting a message deletes its document (a
trigger on ``mail_message``). The words of the next batch's bodies, most of what a
document costs to cut, are cut in the job worker's worker processes while a batch is
written (``cut_ahead``).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from datetime import UTC, date, datetime
from typing import Any

from django.db import connection, transaction

from crmail.jobs import worker_process
from crmail.mail.models import Attachment, Message, ParseState, Participant
from crmail.search.tsvector import literal
from crmail.search.words import joined, joined_each

log = logging.getLogger(__name__)

SENDER_ROLES = frozenset({"from", "sender", "reply-to"})
RECIPIENT_ROLES = frozenset({"to", "cc", "bcc"})
# Characters of a body that are indexed: PostgreSQL refuses a tsvector past 1 MB, and the
# rest of a very long text (logs, quoted threads) rarely holds what someone looks for.
BODY_LIMIT = 100_000
BATCH = 500
# PostgreSQL: how many message ids share a bucket token, and a coarse bucket token
# (decision 047). Changing either means rebuilding every document.
BUCKET = 10_000
COARSE = 100_000
ATTACHED = "_a"  # the attachment token
# PostgreSQL: two words next to each other, one of them of at most this many
# characters, are also one lexeme of their own ("with a", "the merra"), so that a phrase
# with a common word is found in the index rather than in every document holding both
# (decisions 048 and 049).
PAIR_WORD = 4
# The bodies of at least this many messages are cut ahead in the worker processes, at
# most this many characters of them (held here, and handed over, until the next batch).
CUT_AHEAD_FROM = 100
CUT_AHEAD_CHARS = 20_000_000


def year_token(year: int) -> str:
    """The index's token for a message dated in ``year`` (UTC)."""
    return f"_y{year:04d}"


def month_token(year: int, month: int) -> str:
    """The index's token for a message dated in ``month`` of ``year`` (UTC)."""
    return f"_m{year:04d}{month:02d}"


def token_days(token: str) -> tuple[date, date]:
    """The days a ``year_token`` or ``month_token`` stands for: (the first, the day after
    the last)."""
    year = int(token[2:6])
    if token.startswith("_y"):
        return date(year, 1, 1), date(year + 1, 1, 1)
    month = int(token[6:8])
    return date(year, month, 1), date(year + month // 12, month % 12 + 1, 1)


def bucket_token(bucket: int) -> str:
    """PostgreSQL: the index's token for the messages whose id // ``BUCKET`` is ``bucket``."""
    return f"_b{bucket}"


def coarse_token(coarse: int) -> str:
    """PostgreSQL: the index's token for the messages whose id // ``COARSE`` is ``coarse``."""
    return f"_c{coarse}"


def date_tokens(moment: datetime | None) -> str:
    """The tokens of a message's date: its year's and its month's, in UTC; none for a
    message without a date. A word of text never holds ``_`` (``words``), so no search
    for words finds them."""
    if moment is None:
        return ""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"{year_token(utc.year)} {month_token(utc.year, utc.month)}"


def pair(first: str, second: str) -> str | None:
    """PostgreSQL: the lexeme of two words next to each other, when one of them is short
    (``PAIR_WORD``); None otherwise. It starts with ``_``, as no word does: a prefix
    (``ann:*``) never finds a pair (``ann lee``), and no one can type one."""
    if len(first) <= PAIR_WORD or len(second) <= PAIR_WORD:
        return f"_{first} {second}"
    return None


def pairs(fields: Sequence[str]) -> set[str]:
    """PostgreSQL: the pair lexemes of a document's ``fields`` (each the index's words
    joined by spaces), read as PostgreSQL numbers their positions: one field after the
    other, so the last word of one is next to the first of the next (``<->`` matches
    there too, and a pair must be in the document wherever ``<->`` finds one)."""
    sequence = [w for field in fields for w in field.split()]
    return {p for a, b in itertools.pairwise(sequence) if (p := pair(a, b)) is not None}


Document = tuple[int, str, str, str, str, str, str, list[str], tuple[str, ...]]


def _documents(ids: Sequence[int]) -> list[Document]:
    """The documents of the parsed messages among ``ids``: (id, subject, senders,
    recipients, body, attachments, date tokens (SQLite's ``dates`` column): each a
    string of words separated by spaces; and, on PostgreSQL, the lexemes of its
    ``extra`` column: the date tokens, the attachment's, the buckets' and the pairs; and
    the ``document`` column's parts, in order, as ``tsvector.literal`` writes them: the
    subject (A), the senders (B), the recipients (C), the body and the attachments (D))."""
    senders: dict[int, list[str]] = defaultdict(list)
    recipients: dict[int, list[str]] = defaultdict(list)
    for message_id, role, name, address in Participant.objects.filter(
        message_id__in=ids
    ).values_list("message_id", "role", "name", "address"):
        into = senders if role in SENDER_ROLES else recipients if role in RECIPIENT_ROLES else None
        if into is not None:
            into[message_id] += [name, address]
    files: dict[int, list[str]] = defaultdict(list)
    for message_id, filename in (
        Attachment.objects.filter(message_id__in=ids)
        .exclude(filename="")
        .values_list("message_id", "filename")
    ):
        files[message_id].append(filename)
    # In rowid order: FTS5 writes a new segment whenever a rowid is not above the last one
    # it was given, and merging thousands of one-document segments read the whole index
    # again and again (20 s for 500 documents on a store of a million messages).
    rows = (
        Message.objects.filter(pk__in=ids, parse_state__in=(ParseState.PARSED, ParseState.PARTIAL))
        .order_by("pk")
        .values_list("pk", "subject", "body_text", "date", "has_attachments")
    )
    postgresql = connection.vendor == "postgresql"
    documents = []
    for pk, subject, body, moment, attached in rows:
        body_words, body_vector = _body_words(pk, body[:BODY_LIMIT], postgresql)
        fields = (
            joined([subject]),
            joined(senders[pk]),
            joined(recipients[pk]),
            body_words,
            joined(files[pk]),
        )
        dates = date_tokens(moment)
        tokens: list[str] = []
        vector: tuple[str, ...] = ()
        if postgresql:
            tokens = [*dates.split(), bucket_token(pk // BUCKET), coarse_token(pk // COARSE)]
            tokens += [*([ATTACHED] if attached else []), *sorted(pairs(fields))]
            head = (literal(fields[0], "A"), literal(fields[1], "B"), literal(fields[2], "C"))
            vector = (*head, body_vector, literal(fields[4]))
        documents.append((pk, *fields, dates, tokens, vector))
    return documents


# Bodies cut ahead (``cut_ahead``): by message id, the text handed over, the worker's
# future (``joined_each``) and the text's place in what it returns. A message's words are
# taken from here only for the very text its row holds when its document is read; only
# the last batch's are kept.
_ahead: dict[int, tuple[str, Future[list[tuple[str, str]]], int]] = {}
_ahead_lock = threading.Lock()


def cut_ahead(ids: Sequence[int]) -> None:
    """Hand the body texts of the parsed messages among ``ids`` (the next batch's) to the
    worker processes to be cut into words while this batch is written; a later
    ``read_documents`` takes them. What was cut ahead before and not taken is let go.
    Fewer than ``CUT_AHEAD_FROM`` messages, or no workers: nothing is handed over; past
    ``CUT_AHEAD_CHARS`` characters, the rest is cut when its batch comes."""
    found: dict[int, tuple[str, Future[list[tuple[str, str]]], int]] = {}
    pool = worker_process.shared_pool() if len(ids) >= CUT_AHEAD_FROM else None
    if pool is not None and (items := _bodies(ids)):  # none: no round trip to the workers
        vectors = connection.vendor == "postgresql"
        try:
            future = pool.submit(joined_each, [text for _, text in items], vectors)
        except RuntimeError:  # a broken pool (BrokenProcessPool is one), or shut down
            worker_process.forget_shared_pool(pool)
        else:
            found = {pk: (text, future, at) for at, (pk, text) in enumerate(items)}
    with _ahead_lock:
        _ahead.clear()
        _ahead.update(found)


def _bodies(ids: Sequence[int]) -> list[tuple[int, str]]:
    """The indexed part of the body texts of the parsed messages among ``ids``, with
    their ids, as far as ``CUT_AHEAD_CHARS`` characters reach."""
    found = []
    size = 0
    for pk, body in Message.objects.filter(
        pk__in=list(ids), parse_state__in=(ParseState.PARSED, ParseState.PARTIAL)
    ).values_list("pk", "body_text"):
        text = body[:BODY_LIMIT]
        size += len(text)
        if size > CUT_AHEAD_CHARS:
            break
        found.append((pk, text))
    return found


def _body_words(pk: int, text: str, vector: bool) -> tuple[str, str]:
    """The words of message ``pk``'s body ``text`` and, with ``vector`` (PostgreSQL),
    their ``tsvector.literal`` (else ""): cut ahead if they were (for this very text),
    else here."""
    with _ahead_lock:
        ahead = _ahead.pop(pk, None)
    if ahead is not None and ahead[0] == text:
        try:
            return ahead[1].result()[ahead[2]]
        except Exception as exc:  # a worker died: this batch is cut here
            log.warning("search: cutting words ahead failed (%s); cut here", exc)
            with _ahead_lock:
                _ahead.clear()
    words = joined([text])
    return words, literal(words) if vector else ""


def index_messages(ids: Sequence[int], ahead: Sequence[int] = ()) -> int:
    """Write (or rewrite) the documents of the messages ``ids``; returns how many.
    ``ahead``: the next batch's ids, whose bodies are cut in the worker processes while
    these are written (``cut_ahead``; what the search consumer does, decision 072)."""
    documents = read_documents(ids)
    if ahead:
        cut_ahead(ahead)
    return write_documents(documents)


Chunk = tuple[list[int], list[Document]]


def read_documents(ids: Sequence[int]) -> list[Chunk]:
    """The documents of the messages ``ids``, read and cut into words, not written: each
    chunk of at most ``BATCH`` ids with the documents of those parsed."""
    chunks = [list(ids[start : start + BATCH]) for start in range(0, len(ids), BATCH)]
    return [(chunk, _documents(chunk)) for chunk in chunks]


def write_documents(chunks: Iterable[Chunk]) -> int:
    """Write what ``read_documents`` read, a transaction a chunk; returns how many
    documents. A message deleted since, or no longer parsed, gets none: its words may
    have been read before it changed."""
    written = 0
    for chunk, documents in chunks:
        with transaction.atomic():
            current = set(
                Message.objects.filter(
                    pk__in=chunk, parse_state__in=(ParseState.PARSED, ParseState.PARTIAL)
                ).values_list("pk", flat=True)
            )
            kept = [d for d in documents if d[0] in current]
            _write(chunk, kept)
        written += len(kept)
    return written


def _write(ids: list[int], documents: list[Document]) -> None:
    ids = sorted(ids)  # ``documents`` come from ``_documents``, in message order
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # Deletes, then inserts, each in rowid order: FTS5 starts one new segment
            # between them, not one per document.
            cursor.executemany("DELETE FROM search_fts WHERE rowid = %s", [(i,) for i in ids])
            cursor.executemany(
                "INSERT INTO search_fts"
                " (rowid, subject, sender, recipients, body, attachments, dates)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [document[:7] for document in documents],
            )
        elif connection.vendor == "postgresql":
            found = {d[0] for d in documents}
            gone = [i for i in ids if i not in found]
            if gone:
                cursor.execute("DELETE FROM search_document WHERE message_id = ANY(%s)", [gone])
            # Each part's positions follow the last of the parts before it (``||``).
            cursor.executemany(
                "INSERT INTO search_document (message_id, document, extra) VALUES (%s,"
                " %s::tsvector || %s::tsvector || %s::tsvector || %s::tsvector"
                " || %s::tsvector, array_to_tsvector(string_to_array(%s, chr(10))))"
                " ON CONFLICT (message_id) DO UPDATE"
                " SET document = EXCLUDED.document, extra = EXCLUDED.extra",
                [(document[0], *document[8], _lines(document[7])) for document in documents],
            )
            _add_words(cursor, {w for d in documents for field in d[1:6] for w in field.split()})
        else:
            raise NotImplementedError(f"No search index on {connection.vendor}.")


def _lines(terms: list[str]) -> str:
    """PostgreSQL: ``terms`` (words, pairs, tokens: never a line break) one a line, for
    ``string_to_array(…, chr(10))``. A list passed as a ``text[]`` has every element
    escaped by psycopg in Python, one regular expression at a time: most of the index's
    writing time for a first sync."""
    return "\n".join(terms)


# PostgreSQL: words this process saw committed to ``search_vocab``, by the table they went
# to (its oid changes when a migration makes it anew), so that a batch asks the table
# about its new words alone (asking about all of them cost a sixth of the batch's write).
_known: dict[tuple[str, int], set[str]] = {}
KNOWN_LIMIT = 500_000


def _add_words(cursor: Any, found: set[str]) -> None:
    """PostgreSQL: ``found`` (the words of a batch's documents, as the index holds them)
    into ``search_vocab``, for the words a prefix is the start of. In order, so that two
    writers adding the same new words wait for each other, never lock each other out;
    remembered once the batch commits (a batch rolled back adds nothing)."""
    cursor.execute("SELECT current_database(), 'search_vocab'::regclass::oid")
    name, oid = cursor.fetchone()
    known = _known.setdefault((str(name), int(oid)), set())
    new = sorted(found - known)
    if not new:
        return
    cursor.execute(
        "INSERT INTO search_vocab (term) SELECT unnest(string_to_array(%s, chr(10)))"
        " ON CONFLICT DO NOTHING",
        [_lines(new)],
    )

    def remember() -> None:
        if len(known) + len(new) > KNOWN_LIMIT:
            known.clear()
        known.update(new)

    transaction.on_commit(remember)


def reindex(
    mailbox_id: int | None = None, progress: Callable[[int, int], None] | None = None
) -> int:
    """Rebuild the documents of every parsed message, or of those in one mailbox; returns
    how many were written. Searches keep working meanwhile: documents are replaced batch by
    batch (the next batch's bodies cut in the worker processes while one is written), and
    a whole rebuild ends by dropping documents of messages that are gone."""
    messages = Message.objects.filter(parse_state__in=(ParseState.PARSED, ParseState.PARTIAL))
    if mailbox_id is not None:
        messages = messages.filter(locations__mailbox_id=mailbox_id).distinct()
    ids = list(messages.order_by("pk").values_list("pk", flat=True))
    done = 0
    if progress:
        progress(0, len(ids))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        index_messages(chunk, ahead=ids[start + BATCH : start + 2 * BATCH])
        done += len(chunk)
        if progress:
            progress(done, len(ids))
    if mailbox_id is None:
        _drop_orphans()
    return done


def _drop_orphans() -> None:
    parsed = ", ".join(f"'{s}'" for s in (ParseState.PARSED, ParseState.PARTIAL))
    with connection.cursor() as cursor:
        # Only table names and constants go into the text.
        if connection.vendor == "sqlite":
            cursor.execute(
                "DELETE FROM search_fts WHERE rowid NOT IN"  # noqa: S608
                f" (SELECT id FROM mail_message WHERE parse_state IN ({parsed}))"
            )
        else:
            cursor.execute(
                "DELETE FROM search_document d WHERE NOT EXISTS"  # noqa: S608
                " (SELECT 1 FROM mail_message m WHERE m.id = d.message_id"
                f" AND m.parse_state IN ({parsed}))"
            )


def indexed_count() -> int:
    """How many documents the index holds."""
    table = "search_fts" if connection.vendor == "sqlite" else "search_document"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608
        return int(cursor.fetchone()[0])
