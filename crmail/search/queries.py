"""Finding mail: a query and filters, through the visibility layer, ranked, one row a thread.

The messages a viewer may see are ``sharing.visibility.visible_messages`` (or, for a linked
record, ``visible_messages(viewer, module, id)``), with the filters added to that same
query; the index's matches are joined to it in SQL, then ranked and collapsed to one row
per thread (its best match, with how many of its messages match), counted and cut to a
page in one statement. No message outside that query is read, shown or counted.
Folders, mailboxes and unread state are those of the viewer's own mailboxes (decision 020:
which messages lie in a colleague's mailbox, and where, is that colleague's mail).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from crmail.mail import tags
from crmail.mail.models import Message
from crmail.mailboxes.models import Location
from crmail.people.models import User
from crmail.search.index import normalise
from crmail.search.query import Query, person
from crmail.sharing.visibility import visible_messages

# The best matches (or, without words, the newest candidates) checked against visibility
# at first, then GROWTH times as many until a page is full (decision 031).
WINDOW = 2_000
GROWTH = 8
SNIPPET_CHARS = 200
# How much of a body is looked through for the words to show.
SNIPPET_SCAN = 50_000
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Filters:
    """Conditions given apart from the query text (the API's parameters, the page's
    fields). ``sender``/``recipient`` are read like ``from:``/``to:``; ``record`` is
    (module, id) of a record the message must be on."""

    sender: str | None = None
    recipient: str | None = None
    after: date | None = None
    before: date | None = None
    has_attachment: bool | None = None
    folder_id: int | None = None
    unread: bool | None = None
    mailbox_id: int | None = None
    record: tuple[str, int] | None = None
    tag: str | None = None


@dataclass(frozen=True)
class Hit:
    message: Message
    in_thread: int  # messages of its thread that match
    subject_html: SafeString
    snippet_html: SafeString


@dataclass
class Results:
    hits: list[Hit] = field(default_factory=list)
    count: int = 0  # threads, over all pages
    more: bool = False  # more threads match than ``count`` says (a lower bound)


def combined(query: Query, filters: Filters) -> Query:
    """``query`` with ``filters`` added to it (both must hold). Raises ``QueryError`` for a
    sender or recipient filter that holds no word."""
    terms = list(query.terms)
    if filters.sender is not None:
        terms.append(person("from", filters.sender))
    if filters.recipient is not None:
        terms.append(person("to", filters.recipient))
    afters = [d for d in (query.after, filters.after) if d]
    befores = [d for d in (query.before, filters.before) if d]
    return replace(
        query,
        terms=terms,
        after=max(afters) if afters else None,
        before=min(befores) if befores else None,
        has_attachment=(
            query.has_attachment if filters.has_attachment is None else filters.has_attachment
        ),
        unread=query.unread if filters.unread is None else filters.unread,
        tags=[*query.tags, *([filters.tag] if filters.tag is not None else [])],
    )


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def candidates(viewer: User, query: Query, filters: Filters) -> QuerySet[Message]:
    """The messages ``viewer`` may see that meet every condition but the words."""
    if filters.record is not None:
        qs = visible_messages(viewer, filters.record[0], filters.record[1])
    else:
        qs = visible_messages(viewer)
    if query.after:
        qs = qs.filter(date__gte=_start_of(query.after))
    if query.before:
        qs = qs.filter(date__lt=_start_of(query.before))
    if query.has_attachment is not None:
        qs = qs.filter(has_attachments=query.has_attachment)
    for name in query.tags:  # each tag's messages: one index range (tag, message)
        qs = qs.filter(pk__in=tags.tagged(name))
    # The viewer's own copies, as a list of message ids: the database starts from them (a
    # fraction of what the viewer may see) rather than testing every visible message.
    own = Location.objects.filter(mailbox__owner_id=viewer.pk)
    if filters.mailbox_id is not None:
        qs = qs.filter(pk__in=own.filter(mailbox_id=filters.mailbox_id).values("message_id"))
    if filters.folder_id is not None:
        qs = qs.filter(pk__in=own.filter(folder_id=filters.folder_id).values("message_id"))
    if query.folder_name:
        named = Q(folder__name__iexact=query.folder_name) | Q(
            folder__role__iexact=query.folder_name
        )
        qs = qs.filter(pk__in=own.filter(named).values("message_id"))
    if query.unread is not None:
        qs = qs.filter(pk__in=own.filter(seen=not query.unread).values("message_id"))
    return qs


def search_messages(
    viewer: User, query: Query, filters: Filters | None = None, *, limit: int = 20, offset: int = 0
) -> Results:
    """One page of the threads whose messages match, best first, as ``viewer`` may see
    them; nothing at all for an empty query. Raises ``QueryError`` for a sender or
    recipient filter that holds no word.

    Bounded (decision 031): the ``WINDOW`` best matches (newest candidates, without
    words) are checked against visibility first, then eight times as many, until the page
    is full or every match has been looked at. When the window cut matches off, the page
    is still exact (any thread outside the window ranks below every thread in it), its
    thread counts are counted apart, and ``count`` is a lower bound (``more``)."""
    filters = filters or Filters()
    query = combined(query, filters)
    if query.is_empty() and filters == Filters():
        return Results()
    base = candidates(viewer, query, filters)
    try:
        base_sql, base_params = (
            base.order_by().values("id", "thread_id", "date").query.sql_with_params()
        )
    except EmptyResultSet:  # nothing to see at all (a deactivated viewer): nothing to find
        return Results()
    window: int | None = WINDOW
    while True:
        rows, count, cut = _page(query, base_sql, list(base_params), window, limit, offset)
        if not cut or len(rows) >= limit:
            break
        window = window * GROWTH if window < WINDOW * GROWTH**3 else None
    in_thread = {r[0]: int(r[1]) for r in rows}
    if cut:
        in_thread = _in_thread(base, query, [r[0] for r in rows])
    messages = Message.objects.in_bulk([r[0] for r in rows])
    hits = []
    for message_id, _, _ in rows:
        message = messages[message_id]
        hits.append(
            Hit(
                message=message,
                in_thread=in_thread[message_id],
                subject_html=highlight(message.subject, query),
                snippet_html=snippet(message.body_text, query),
            )
        )
    return Results(hits=hits, count=count, more=cut)


THREAD = "COALESCE(thread_id, -id)"


def _window_sql(
    query: Query, base_sql: str, base_params: list[Any], window: int | None
) -> tuple[str, list[Any]]:
    """``WITH m AS (…), hits AS (…)``: the window (at most ``window`` + 1 best matches, or
    newest candidates without words; every one when ``window`` is None) and, of it, the
    messages the viewer may see, with their thread, date and score."""
    cap = "" if window is None else " LIMIT %s"
    cap_params = [] if window is None else [window + 1]
    if query.terms:
        if connection.vendor == "sqlite":
            match_sql = (
                "SELECT rowid AS id, bm25(search_fts, 10.0, 5.0, 3.0, 1.0, 3.0) AS score"
                " FROM search_fts WHERE search_fts MATCH %s"
            )
            match_params: list[Any] = [query.fts5()]
        else:
            match_sql = (
                "SELECT message_id AS id, -ts_rank(document, %s::tsquery) AS score"
                " FROM search_document WHERE document @@ %s::tsquery"
            )
            match_params = [query.tsquery(), query.tsquery()]
        sql = (
            f"WITH m AS MATERIALIZED ({match_sql} ORDER BY score, id DESC{cap}),"  # noqa: S608
            f" hits AS (SELECT b.id, b.thread_id, b.date, m.score FROM m"
            f" JOIN ({base_sql}) b ON b.id = m.id)"
        )
        return sql, [*match_params, *cap_params, *base_params]
    sql = (
        "WITH m AS MATERIALIZED (SELECT b.id, b.thread_id, b.date, 0 AS score"  # noqa: S608
        f" FROM ({base_sql}) b ORDER BY b.date DESC, b.id DESC{cap}),"
        " hits AS (SELECT id, thread_id, date, score FROM m)"
    )
    return sql, [*base_params, *cap_params]


def _page(
    query: Query,
    base_sql: str,
    base_params: list[Any],
    window: int | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[int, int, int]], int, bool]:
    """The page's (id, matches in its thread, total) rows, the number of threads found
    and whether the window cut matches off."""
    with_sql, params = _window_sql(query, base_sql, base_params, window)
    # The compiled visibility query and constants only; every value is a parameter.
    sql = (
        f"{with_sql}, ranked AS ("  # noqa: S608
        f" SELECT id, score, date, COUNT(*) OVER (PARTITION BY {THREAD}) AS in_thread,"
        f" ROW_NUMBER() OVER (PARTITION BY {THREAD} ORDER BY score, date DESC, id DESC) AS nth"
        " FROM hits)"
        " SELECT id, in_thread, COUNT(*) OVER () AS total, (SELECT COUNT(*) FROM m) AS windowed"
        " FROM ranked WHERE nth = 1 ORDER BY score, date DESC, id DESC LIMIT %s OFFSET %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit, offset])
        rows = cursor.fetchall()
        if rows:
            count, windowed = int(rows[0][2]), int(rows[0][3])
        else:
            cursor.execute(
                f"{with_sql} SELECT (SELECT COUNT(DISTINCT {THREAD}) FROM hits),"  # noqa: S608
                " (SELECT COUNT(*) FROM m)",
                params,
            )
            count, windowed = (int(x) for x in cursor.fetchone())
    cut = window is not None and windowed > window
    return [(r[0], r[1], r[2]) for r in rows], count, cut


def _in_thread(base: QuerySet[Message], query: Query, page: list[int]) -> dict[int, int]:
    """For each message of ``page`` (its thread's best match), how many messages of its
    thread match and the viewer may see: counted apart when the window cut matches off."""
    threads = dict(Message.objects.filter(pk__in=page).values_list("pk", "thread_id"))
    members = list(
        Message.objects.filter(
            Q(thread_id__in=[t for t in threads.values() if t]) | Q(pk__in=page)
        ).values_list("pk", flat=True)
    )
    if query.terms:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                marks = ", ".join("%s" for _ in members)
                cursor.execute(
                    f"SELECT rowid FROM search_fts WHERE search_fts MATCH %s"  # noqa: S608
                    f" AND rowid IN ({marks})",
                    [query.fts5(), *members],
                )
            else:
                cursor.execute(
                    "SELECT message_id FROM search_document"
                    " WHERE message_id = ANY(%s) AND document @@ %s::tsquery",
                    [members, query.tsquery()],
                )
            members = [r[0] for r in cursor.fetchall()]
    seen = base.order_by().filter(pk__in=members).values_list("pk", "thread_id")
    per_thread: dict[int, int] = {}
    for pk, thread in seen:
        key = thread if thread is not None else -pk
        per_thread[key] = per_thread.get(key, 0) + 1
    return {pk: per_thread.get(t if t is not None else -pk, 1) for pk, t in threads.items()}


# --- highlighting ----------------------------------------------------------------------


def _matches(word: str, query: Query) -> bool:
    folded = normalise(word) if not word.isascii() else word.lower()
    if folded in query.words:
        return True
    return any(folded.startswith(p) for p in query.prefixes)


def _marked(text: str, query: Query) -> str:
    out, last = [], 0
    for m in _WORD.finditer(text):
        if _matches(m.group(0), query):
            out.append(html.escape(text[last : m.start()]))
            out.append(f"<mark>{html.escape(m.group(0))}</mark>")
            last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def highlight(text: str, query: Query) -> SafeString:
    """``text`` as HTML, escaped, each word the query looks for in ``<mark>``."""
    return mark_safe(_marked(text, query))  # noqa: S308  (escaped piece by piece above)


def snippet(text: str, query: Query) -> SafeString:
    """About ``SNIPPET_CHARS`` characters of ``text`` around the first word the query looks
    for (or its start), as escaped HTML with the words in ``<mark>``."""
    text = " ".join(text[:SNIPPET_SCAN].split())
    start = 0
    for m in _WORD.finditer(text):
        if _matches(m.group(0), query):
            start = max(0, m.start() - SNIPPET_CHARS // 3)
            break
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    piece = text[start : start + SNIPPET_CHARS]
    lead = "… " if start else ""
    tail = " …" if start + SNIPPET_CHARS < len(text) else ""
    return mark_safe(html.escape(lead) + _marked(piece, query) + html.escape(tail))  # noqa: S308
