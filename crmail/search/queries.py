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

import bisect
import html
import itertools
import math
import re
import time as clock
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.apps import apps
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from crmail.linking.deal_links import on_open_deals
from crmail.mail import tags
from crmail.mail.models import Message
from crmail.mailboxes.models import Location, SentMessage
from crmail.people.models import User
from crmail.search.index import (
    ATTACHED,
    BUCKET,
    COARSE,
    bucket_token,
    coarse_token,
    month_token,
    pair,
    token_days,
    year_token,
)
from crmail.search.query import FIELD_ANY, FIELD_RECIPIENTS, FIELD_SENDER, Query, Term, person
from crmail.search.words import normalise
from crmail.sharing.visibility import own_messages, visible_messages

# The best matches (or, without words, the newest candidates) checked against visibility
# at first, then GROWTH times as many until a page is full (decision 031).
WINDOW = 500
GROWTH = 8
# Matches scored at first: the newest stored (the highest message ids), never fewer than
# RANKED_PER_WINDOW times the window; a word found in more messages is ranked among its
# newest matches, and the count says "more" (decision 045).
RANKED = 2_000
RANKED_PER_WINDOW = 4
# A linked record with at most this many messages the viewer may see: the index is asked
# about those messages alone, instead of ranking every match of the words (decision 045).
FEW = 2_000
# A last word that starts at most this many words of the index is looked for as those
# words (decision 045).
CONTINUATIONS = 40
# A date range holding at most this many messages is read from the date index first
# (when it is not written as the index's date tokens).
FEW_DATES = 50_000
# A date range is looked for as at most this many year and month tokens of the index
# (decision 046); a longer one is tested on each match.
DATE_TOKENS = 24
# PostgreSQL (decision 047): the newest matches are sought in the newest buckets of
# message ids first (``search.index.bucket_token``), as many as should hold
# ``SLICE_MARGIN`` times the matches to be ranked by the index's statistics; a slice
# that holds too few is widened to what should hold them by the share it held, at least
# ``SLICE_GROWTH`` times, up to the whole index (decision 049).
SLICE_MARGIN = 1.5
SLICE_GROWTH = 2
# PostgreSQL: a query with a prefix that stays a prefix (more than CONTINUATIONS words
# start it) is looked for row by row, newest first, in a slice of at most this many
# message ids, rather than through the index, which gathers every continuation's
# matches before it hands over the first.
WALK_IDS = 60_000
# How long the index's statistics (PostgreSQL's ANALYZE) are kept in memory.
STATS_SECONDS = 600
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
    source: str | None = None
    sentiment: str | None = None
    intent: str | None = None
    open_deals: bool = False


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
        sources=[*query.sources, *([filters.source] if filters.source is not None else [])],
        sentiments=[*query.sentiments, *([filters.sentiment] if filters.sentiment else [])],
        intents=[*query.intents, *([filters.intent] if filters.intent else [])],
        open_deals=query.open_deals or filters.open_deals,
    )


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _own_copies(query: Query, filters: Filters) -> list[Q]:
    """The conditions on the viewer's own copies (``Location``), each to be met by one
    copy at least: a mailbox, a folder, read or unread."""
    own: list[Q] = []
    if filters.mailbox_id is not None:
        own.append(Q(mailbox_id=filters.mailbox_id))
    if filters.folder_id is not None:
        own.append(Q(folder_id=filters.folder_id))
    if query.folder_name:
        own.append(
            Q(folder__name__iexact=query.folder_name) | Q(folder__role__iexact=query.folder_name)
        )
    if query.unread is not None:
        own.append(Q(seen=not query.unread))
    return own


def candidates(viewer: User, query: Query, filters: Filters) -> QuerySet[Message]:
    """The messages ``viewer`` may see that meet every condition but the words."""
    own = _own_copies(query, filters)
    if filters.record is not None:
        qs = visible_messages(viewer, filters.record[0], filters.record[1])
    elif own:  # the viewer's own mail: the database starts from those copies
        qs = own_messages(viewer, own.pop(0))
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
    for source in query.sources:  # one index range (source, message)
        qs = qs.filter(pk__in=SentMessage.objects.filter(source=source).values("message_id"))
    if query.sentiments or query.intents:
        qs = _intelligence(qs, query)
    if query.open_deals:
        qs = qs.filter(pk__in=on_open_deals(viewer))
    # The viewer's own copies, as a list of message ids: the database starts from them (a
    # fraction of what the viewer may see) rather than testing every visible message.
    copies = Location.objects.filter(mailbox__owner_id=viewer.pk)
    for condition in own:
        qs = qs.filter(pk__in=copies.filter(condition).values("message_id"))
    return qs


def _intelligence(qs: QuerySet[Message], query: Query) -> QuerySet[Message]:
    """``sentiment:`` and ``intent:``: what email intelligence found (its results, read
    through the message's ``intelligence`` relation: search sits beside that app, not
    above it); nothing while the organisation's switch is off."""
    setting = apps.get_model("intelligence", "IntelligenceSetting")
    if setting.objects.filter(pk=1, enabled=False).exists():
        return qs.none()
    for sentiment in query.sentiments:
        qs = qs.filter(intelligence__sentiment=sentiment)
    for intent in query.intents:
        qs = qs.filter(intelligence__intent=intent)
    return qs


def search_messages(
    viewer: User, query: Query, filters: Filters | None = None, *, limit: int = 20, offset: int = 0
) -> Results:
    """One page of the threads whose messages match, best first, as ``viewer`` may see
    them; nothing at all for an empty query. Raises ``QueryError`` for a sender or
    recipient filter that holds no word.

    Bounded (decisions 031 and 045): of the newest ``RANKED`` matches, the ``WINDOW``
    best (newest candidates, without words) are checked against visibility first, then
    eight times as many of both, until the page is full or every match has been looked
    at. When the window cut matches off, the page is exact among the matches ranked (any
    of their threads outside the window ranks below every thread in it), its thread
    counts are counted apart, and ``count`` is a lower bound (``more``)."""
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
    if query.terms or filters.record is not None or _own_copies(query, filters):
        base_sql = _by_id(base_sql)
    few = _few(base_sql, list(base_params), query, filters)
    # What the index is asked, worked out once (the words a prefix starts and the ends
    # of an open date range are queries of their own).
    continuations = _continuations(query)
    dates = _date_tokens(query) if query.terms else []
    match = _match(query, continuations, dates) if query.terms else Match("")
    words = query.tsquery(continuations)  # PostgreSQL's ranking and thread counts
    window: int | None = WINDOW
    slices = _Slices.of(query, match, few, dates, continuations)
    while True:
        rows, count, cut, found = _page(
            query,
            slices.match(window),
            words,
            base_sql,
            list(base_params),
            window,
            limit,
            offset,
            few,
        )
        if window is not None and found < _ranked(window) and slices.widen(window, found):
            continue  # too few matches in the slice: the newest may lie below it
        if window is None or not cut or len(rows) >= limit:
            break
        window = window * GROWTH if window < WINDOW * GROWTH**3 else None
    in_thread = {r[0]: int(r[1]) for r in rows}
    if cut:
        in_thread = _in_thread(base_sql, list(base_params), query, words, [r[0] for r in rows])
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


def _ranked(window: int) -> int:
    """How many of the newest matches are scored for a window of ``window``."""
    return max(RANKED, RANKED_PER_WINDOW * window) + 1


@dataclass(frozen=True)
class Match:
    """What the index is asked. SQLite: ``words``, an FTS5 MATCH expression (the date
    tokens included); ``extra`` is empty. PostgreSQL (decision 051): ``words``, a
    ``tsquery`` of the words, asked of ``search_document.document``; ``extra``, a
    ``tsquery`` of the lexemes of its own (the phrases' pairs, the date tokens, the
    attachment token, a slice's buckets), asked of ``search_document.extra``; empty
    when there are none."""

    words: str
    extra: str = ""
    since: int = 0  # PostgreSQL: read row by row from this message id up, not via the index


def _match(query: Query, continuations: dict[str, list[str] | None], dates: list[str]) -> Match:
    """What the index is asked, each prefix spelt out (``_continuations``), with the
    query's date range as the index's date ``dates`` (``_date_tokens``): on SQLite an
    FTS5 MATCH expression; on PostgreSQL a ``tsquery`` of the words and one of the
    phrases' pairs, the date tokens and the attachment token when the query asks for
    (or against) attachments."""
    if connection.vendor != "sqlite":
        parts = [f"'{p}'" for p in _pairs(query)]
        if dates:
            parts.append("(" + " | ".join(f"'{t}'" for t in dates) + ")")
        if query.has_attachment is not None:
            parts.append(("" if query.has_attachment else "!") + f"'{ATTACHED}'")
        return Match(query.tsquery(continuations), " & ".join(parts))
    match = query.fts5(continuations)
    if not dates:
        return Match(match)
    return Match(f"{match} AND (" + " OR ".join(f'"{t}"' for t in dates) + ")")


def _where(match: Match) -> tuple[str, list[Any]]:
    """PostgreSQL: `` WHERE …`` of ``match`` on the documents ``d``: one scan of the GIN
    index on both columns; or, for a slice read row by row (``since``), each document
    from that id up tested as it is read (``ts_match_vq`` is ``@@``, but a call the
    planner does not hand to the index)."""

    def holds(column: str) -> str:
        if match.since:
            return f"ts_match_vq(d.{column}, %s::tsquery)"
        return f"d.{column} @@ %s::tsquery"

    conditions, params = [holds("document")], list[Any]([match.words])
    if match.extra:
        conditions.append(holds("extra"))
        params.append(match.extra)
    if match.since:
        conditions.insert(0, "d.message_id >= %s")
        params.insert(0, match.since)
    return " WHERE " + " AND ".join(conditions), params


def _pairs(query: Query) -> list[str]:
    """PostgreSQL: the pair lexemes every match of ``query``'s phrases holds (two words
    next to each other, one of them short; not the last word of a prefix), in order
    (decisions 048 and 049)."""
    found: list[str] = []
    for term in query.terms:
        found += [lexeme for lexeme in _term_pairs(term) if lexeme not in found]
    return found


def _term_pairs(term: Term) -> list[str]:
    """The pair lexemes of one term of a query (``_pairs``)."""
    whole = len(term.words) - (1 if term.prefix else 0)
    found = (pair(first, second) for first, second in itertools.pairwise(term.words[:whole]))
    return [lexeme for lexeme in found if lexeme is not None]


def _date_tokens(query: Query) -> list[str]:
    """The year and month tokens (``search.index``) that cover the query's date range:
    a whole year as its year's token, the months at either end as theirs. An open end
    stops at the oldest or newest message. None (an empty list) when there is no range,
    no message, or more than ``DATE_TOKENS`` tokens would be needed; the range's exact
    days are tested on each match in any case (``_narrowed``)."""
    if not (query.after or query.before):
        return []
    start = _start_of(query.after) if query.after else None
    end = _start_of(query.before) if query.before else None
    if start is None or end is None:
        ends = Message.objects.filter(date__isnull=False).order_by()
        if start is None:
            start = ends.order_by("date").values_list("date", flat=True).first()
        if end is None:
            end = ends.order_by("-date").values_list("date", flat=True).first()
            end = end + timedelta(microseconds=1) if end is not None else None
    if start is None or end is None or start >= end:
        return []
    first = start.astimezone(UTC)
    last = (end - timedelta(microseconds=1)).astimezone(UTC)
    tokens = []
    for year in range(first.year, last.year + 1):
        low = first.month if year == first.year else 1
        high = last.month if year == last.year else 12
        if (low, high) == (1, 12):
            tokens.append(year_token(year))
        else:
            tokens += [month_token(year, month) for month in range(low, high + 1)]
        if len(tokens) > DATE_TOKENS:
            return []
    return tokens


_frequencies_read: dict[str, tuple[float, dict[str, float], float]] = {}


_COLUMNS_COUNTED = ("document", "extra")


def _frequencies() -> tuple[dict[str, float], float]:
    """PostgreSQL: the share of documents holding each of the index's most common
    lexemes (its statistics, from ANALYZE: the words' of ``document`` and the tokens' and
    pairs' of ``extra``, two lists that share no lexeme), and a floor: more than any
    lexeme not listed holds. Each column's floor is the least share it lists; the floor
    is the larger of the two, the one that bounds an unlisted lexeme of either column
    (the smaller would take a pair or a token not listed for rarer than it may be, and
    size a slice too small, asked again), and a term below it is read whole, as decision
    049 found right for one that rare. A column that lists nothing (no statistics yet):
    every lexeme is taken to be in every document."""
    name = str(connection.settings_dict.get("NAME"))
    kept = _frequencies_read.get(name)
    if kept is not None and clock.monotonic() - kept[0] < STATS_SECONDS:
        return kept[1], kept[2]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, most_common_elems::text::text[], most_common_elem_freqs"
            " FROM pg_stats WHERE schemaname = current_schema()"
            " AND tablename = 'search_document' AND attname = ANY(%s)",
            [list(_COLUMNS_COUNTED)],
        )
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    listed: dict[str, float] = {}
    floor = 0.0
    for column in _COLUMNS_COUNTED:
        lexemes, shares = rows.get(column, (None, None))
        if not (lexemes and shares):
            floor = 1.0
            continue
        listed.update(zip(lexemes, (float(share) for share in shares), strict=False))
        # After the lexemes' shares: the least and the greatest of them.
        floor = max(floor, float(shares[len(lexemes)]) if len(shares) > len(lexemes) else 1.0)
    _frequencies_read[name] = (clock.monotonic(), listed, floor)
    return listed, floor


_ordered_read: dict[int, tuple[dict[str, float], list[str], list[float]]] = {}


def _starting(listed: dict[str, float], start: str) -> float:
    """The shares of the lexemes of ``listed`` that start with ``start``, summed: two
    binary searches in the lexemes in order and their running sums, kept with the
    statistics (adding up the tens of thousands listed took 5 ms a query)."""
    kept = _ordered_read.get(id(listed))
    if kept is None or kept[0] is not listed:
        ordered = sorted(listed)
        running = [0.0, *itertools.accumulate(listed[lexeme] for lexeme in ordered)]
        if len(_ordered_read) > 8:
            _ordered_read.clear()
        kept = _ordered_read[id(listed)] = (listed, ordered, running)
    _, ordered, running = kept
    low = bisect.bisect_left(ordered, start)
    high = bisect.bisect_left(ordered, start + "\U0010ffff")
    return running[high] - running[low]


def _density(query: Query, dates: list[str]) -> tuple[float, float]:
    """PostgreSQL: the share of documents estimated to match ``query`` (its words, dates
    and attachment condition), from the index's statistics: a term as its rarest word
    (a prefix as the sum of the listed words it starts), the terms as if independent;
    and the share of the rarest of them (what the index reads through, skipping in the
    others' lists), 0 when that is not known (a word the statistics do not list).
    Estimates: a slice sized from them is widened when it holds too few matches."""
    listed, floor = _frequencies()

    def share(word: str, prefix: bool) -> float:
        if prefix:
            return min(1.0, max(_starting(listed, word), floor))
        return listed.get(word, floor)

    # A term as the rarest of its words and pairs: a pair holds both its words, and
    # multiplying their shares took "from to" for a third of the phrase it is.
    shares = [
        min(
            [share(w, term.prefix and i == len(term.words) - 1) for i, w in enumerate(term.words)]
            + [listed.get(p, floor) for p in _term_pairs(term)]
        )
        for term in query.terms
    ]
    if dates:
        tokens = min(1.0, sum(listed.get(t, floor) for t in dates))
        shares.append(tokens * _within(query, dates))
    if query.has_attachment:
        shares.append(listed.get(ATTACHED, floor))
    density = math.prod(shares)
    if query.has_attachment is False:
        density *= 1.0 - listed.get(ATTACHED, 0.0)
    rarest = min(shares, default=1.0)
    return max(density, 1e-9), (0.0 if rarest <= floor else rarest)


def _within(query: Query, dates: list[str]) -> float:
    """The share of the days the date tokens ``dates`` cover that lie in the query's
    range (the months at either end are most often cut by it)."""
    spans = [token_days(token) for token in dates]
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    start = max(first, query.after) if query.after else first
    end = min(last, query.before) if query.before else last
    covered = sum((e - s).days for s, e in spans)
    return max(1, (end - start).days) / max(1, covered)


@dataclass
class _Slices:
    """PostgreSQL: the newest buckets of message ids a query's matches are sought in
    (decision 047). FTS5 hands its matches over newest first: on SQLite, and for a
    record's few messages, the whole index is asked at once."""

    match_text: Match
    highest: int = 0  # the highest message id indexed
    top: int = 0  # its bucket
    density: float = 1.0  # the share of documents estimated to match
    rarest: float = 0.0  # how many documents hold the query's rarest term (estimated)
    least: int = 0  # buckets a slice holds at least (after widening)
    walks: bool = False  # a prefix stays a prefix, no date range: a small slice is read row by row

    @classmethod
    def of(
        cls,
        query: Query,
        match: Match,
        few: list[int] | None,
        dates: list[str],
        continuations: dict[str, list[str] | None],
    ) -> _Slices:
        """The slices for ``query`` (its ``match``, date tokens and spelt-out prefixes);
        without a top bucket or a rarest term, every slice is the whole index."""
        if connection.vendor == "sqlite" or not match.words or few is not None:
            return cls(match)
        with connection.cursor() as cursor:
            cursor.execute("SELECT MAX(message_id) FROM search_document")
            highest = int(cursor.fetchone()[0] or 0)
        density, rarest = _density(query, dates)
        # A date range: its matches may lie anywhere among the ids, the newest far above.
        walks = not (query.after or query.before) and None in continuations.values()
        return cls(match, highest, highest // BUCKET, density, rarest * highest, walks=walks)

    def buckets(self, window: int | None) -> int | None:
        """How many of the newest buckets should hold ``SLICE_MARGIN`` times the
        matches ranked for ``window``; None: all of them, and also when the share of
        the query's rarest term is not known (a word the statistics do not list: its
        share is then an upper bound, the slice most often too small, and asking twice
        cost more than reading the word's few matches)."""
        if window is None or not self.rarest:
            return None
        # Counted in ids down from the highest: the newest bucket has often just begun
        # (a slice of two buckets held one bucket's matches, and was asked again).
        wanted = math.ceil(_ranked(window) * SLICE_MARGIN / self.density)
        lowest = max(0, self.highest - wanted + 1) // BUCKET
        buckets = max(self.top - lowest + 1, self.least)
        return None if buckets > self.top else buckets

    def tokens(self, window: int | None) -> list[str] | None:
        """The bucket tokens of the slice for ``window``; None: the whole index. The
        index reads through the smallest lists of a query first and skips through the
        others (PostgreSQL's GIN): a slice holding fewer documents than the query's
        rarest term is written as its buckets, read through; a larger one as the coarse
        buckets that cover it (each larger than that term's list), which only narrow
        what the term's list hands over (otherwise a slice of thirty buckets was read
        through, 68 ms, where the term's list took 8)."""
        lowest = self._lowest(window)
        if lowest is None:
            return None
        if self.highest - lowest * BUCKET + 1 < self.rarest:
            return [bucket_token(b) for b in range(self.top, lowest - 1, -1)]
        top, bottom = self.top * BUCKET // COARSE, lowest * BUCKET // COARSE
        return [coarse_token(c) for c in range(top, bottom - 1, -1)] if bottom > 0 else None

    def since(self, window: int | None) -> int:
        """The lowest message id of the slice for ``window`` when it is read row by row
        (``walks``, and at most ``WALK_IDS`` ids); 0 otherwise."""
        lowest = self._lowest(window)
        if not self.walks or lowest is None:
            return 0
        return lowest * BUCKET if self.highest - lowest * BUCKET < WALK_IDS else 0

    def _lowest(self, window: int | None) -> int | None:
        """The lowest bucket of the slice for ``window``; None: the whole index."""
        buckets = self.buckets(window)
        return None if buckets is None else self.top - buckets + 1

    def match(self, window: int | None) -> Match:
        """The index's query for ``window``: ``match`` within the slice (read row by
        row from its lowest id, or its bucket tokens asked of ``extra``)."""
        since = self.since(window)
        if since:
            return replace(self.match_text, since=since)
        tokens = self.tokens(window)
        if tokens is None:
            return self.match_text
        within = "(" + " | ".join(f"'{t}'" for t in tokens) + ")"
        extra = self.match_text.extra
        return replace(self.match_text, extra=f"{extra} & {within}" if extra else within)

    def widen(self, window: int | None, found: int) -> bool:
        """After a slice for ``window`` held ``found`` matches, too few: look next time
        in as many buckets as should hold ``SLICE_MARGIN`` times the matches ranked at
        the share it held, at least ``SLICE_GROWTH`` times as many (the whole index when
        it held none, or at last); False when its slice was the whole index already.
        A phrase of two common words is much rarer than both words together, and
        widening eightfold at a time read the slices of a rare one three times."""
        buckets = self.buckets(window)
        if window is None or buckets is None:
            return False
        if not self.since(window) and self.tokens(window) is None:
            return False
        wanted = _ranked(window) * SLICE_MARGIN / found if found else math.inf
        self.least = max(buckets * SLICE_GROWTH, math.ceil(min(buckets * wanted, self.top + 1)))
        return True


def _continuations(query: Query) -> dict[str, list[str] | None]:
    """Each prefix of ``query`` spelt out as the whole words of the index it is the start
    of (``search_vocab``), when there are at most ``CONTINUATIONS`` of them; None for a
    prefix with more, which stays a prefix. Both indexes gather every continuation's
    matches of a prefix before handing over the first (FTS5: 250 ms for ``customer*``
    at a million messages, 5 ms for the same words joined by OR; PostgreSQL's GIN: every
    match of every continuation read, 30 to 40 ms for a common word, where the word
    itself is looked for in the newest messages alone)."""
    continuations: dict[str, list[str] | None] = {}
    with connection.cursor() as cursor:
        for term in query.terms:
            start = term.words[-1]
            if not term.prefix or start in continuations:
                continue
            cursor.execute(
                "SELECT term FROM search_vocab WHERE term >= %s AND term < %s LIMIT %s",
                [start, start + "\U0010ffff", CONTINUATIONS + 1],
            )
            words = [row[0] for row in cursor.fetchall()]
            continuations[start] = words if words and len(words) <= CONTINUATIONS else None
    return continuations


def _among(match: Match, column: str) -> str:
    """How an FTS5 ``match`` is tested on a list of ids: each id looked up in the index
    (whole words: a seek in each word's list), or, for a prefix, ``+column``: every match
    tested against the list as the index hands it over (a lookup would gather the
    prefix's continuations again for each id, 1 ms each on a big store)."""
    return f"+{column}" if "*" in match.words else column


_OUTER_TABLE = 'FROM "mail_message" WHERE '


def _by_id(base_sql: str) -> str:
    """SQLite: the candidates' query reading each message's id, date and thread from
    ``message_facets`` instead of the wide row (its body first). For a query that reaches
    messages by their id (matches, a record's links, the viewer's copies); not for one
    that walks every visible message by date."""
    if connection.vendor != "sqlite" or _OUTER_TABLE not in base_sql:
        return base_sql
    # The first FROM is the outer query's: every subquery sits in its WHERE.
    return base_sql.replace(_OUTER_TABLE, 'FROM "mail_message" INDEXED BY message_facets WHERE ', 1)


def _few(base_sql: str, base_params: list[Any], query: Query, filters: Filters) -> list[int] | None:
    """With words and a linked record: the ids of the record's messages the viewer may
    see (the candidates ``base_sql``), when there are at most ``FEW`` of them (None
    otherwise, or without words)."""
    if not query.terms or filters.record is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT b.id FROM ({base_sql}) b LIMIT %s", [*base_params, FEW + 1])  # noqa: S608
        ids = [row[0] for row in cursor.fetchall()]
    return sorted(ids) if len(ids) <= FEW else None


def _dated(query: Query, column: str) -> tuple[str, list[Any]]:
    """`` AND …`` conditions on the date ``column`` for the query's date range."""
    sql, params = "", []
    for day, op in ((query.after, ">="), (query.before, "<")):
        if day:
            sql += f" AND {column} {op} %s"
            params.append(connection.ops.adapt_datetimefield_value(_start_of(day)))
    return sql, params


def _day_ids(query: Query, match: Match) -> tuple[str, list[Any]] | None:
    """SQLite: the ids of the messages dated within the query's date range, as a
    subquery (the date index alone), when there are at most ``FEW_DATES`` of them;
    otherwise None. A common word's matches are then tested against that set as the
    index hands them over (a month of a big store: thousands of ids, each match a lookup
    in memory) instead of each looking up its message's date."""
    if connection.vendor != "sqlite" or not (query.after or query.before):
        return None
    if _DATED in match.words:  # the index narrows the matches to the range's months
        return None
    dated, params = _dated(query, "date")
    sql = f"SELECT id FROM mail_message WHERE date IS NOT NULL{dated}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({sql} LIMIT %s) d", [*params, FEW_DATES + 1])  # noqa: S608
        if int(cursor.fetchone()[0]) > FEW_DATES:
            return None
    return sql, params


_DATED = '"_'  # how a date token starts in an FTS5 MATCH expression


def _narrowed(query: Query, match: Match, column: str) -> tuple[str, list[Any], str, list[Any]]:
    """The query's date range and attachment filter as conditions on each match, cheap
    to test before it is ranked, so that a window is not spent on matches they would
    drop: (a join of the message row ``mm`` on ``column`` with its conditions, its
    parameters, `` AND …`` conditions on ``column``, their parameters)."""
    on, on_params = "", list[Any]()
    where, where_params = "", list[Any]()
    days = _day_ids(query, match)
    if days is not None:
        # ``+``: tested on each match, the set built once (not looked up id by id).
        where, where_params = f" AND +{column} IN ({days[0]})", days[1]
    else:
        on, on_params = _dated(query, "mm.date")
    if query.has_attachment is not None and connection.vendor == "sqlite":
        # (PostgreSQL's ``match`` asks for the attachment token.)
        on += " AND mm.has_attachments = %s"
        on_params.append(query.has_attachment)
    if not on:
        return "", [], where, where_params
    if connection.vendor == "sqlite":
        # The index first, then the message's facets by its id (CROSS JOIN keeps that
        # order; ``message_facets`` holds them without reading the wide row), newest
        # first as the index holds them: no sort before the LIMIT.
        join = " CROSS JOIN mail_message mm INDEXED BY message_facets"
    else:
        join = " JOIN mail_message mm"
    return f"{join} ON mm.id = {column}{on}", on_params, where, where_params


def _matches_sql(
    query: Query, match: Match, words: str, window: int | None, few: list[int] | None
) -> tuple[str, list[Any]]:
    """The index's matches (``match``: ``_match``, or on PostgreSQL its slice) as
    (id, score, how many were scored), lowest score best (PostgreSQL ranks by ``words``,
    the words alone), cut to the window's ``window``
    + 1 best. Scored: the matches among ``few`` when given; otherwise the newest
    ``_ranked(window)`` (every one when ``window`` is None) that meet the query's date
    and attachment conditions."""
    if connection.vendor == "sqlite":
        column = "search_fts.rowid"
        head = (
            "SELECT search_fts.rowid AS id,"
            " bm25(search_fts, 10.0, 5.0, 3.0, 1.0, 3.0, 0.0) AS score FROM search_fts"
        )
        head_params: list[Any] = []
        where = " WHERE search_fts MATCH %s"
        where_params: list[Any] = [match.words]
    else:
        column = "d.message_id"
        head = "SELECT d.message_id AS id, -ts_rank(d.document, %s::tsquery) AS score"
        head += " FROM search_document d"
        head_params = [words]  # the words alone: every match holds the rest
        where, where_params = _where(match)
    join, join_params = "", list[Any]()
    if few is None:
        join, join_params, narrowing, narrowing_params = _narrowed(query, match, column)
        where += narrowing
        where_params += narrowing_params
    elif connection.vendor == "sqlite":
        where += f" AND {_among(match, column)} IN ({', '.join('%s' for _ in few)})"
        where_params += few
    else:
        where += f" AND {column} = ANY(%s)"
        where_params.append(few)
    if few is None and window is not None and connection.vendor != "sqlite":
        # ``+ 0`` keeps PostgreSQL from walking the whole table newest first, testing
        # every document on the way (a word in 3 % of them: 70,000 rows read): the
        # index's own matches are read instead, the newest sorted out of them, and only
        # those are scored (ranking every match read cost as much as reading it). A slice
        # read row by row (``since``) is walked newest first, to its first matches only.
        order = column if match.since else f"{column} + 0"
        newest = (
            f"SELECT {column} AS id FROM search_document d{join}{where}"  # noqa: S608
            f" ORDER BY {order} DESC LIMIT %s"
        )
        where_params.append(_ranked(window))
        scored = (
            "SELECT n.id, -ts_rank(d.document, %s::tsquery) AS score"  # noqa: S608
            f" FROM ({newest}) n JOIN search_document d ON d.message_id = n.id"
        )
    elif few is None and window is not None:
        scored = f"{head}{join}{where} ORDER BY {column} DESC LIMIT %s"
        where_params.append(_ranked(window))
    else:
        scored = f"{head}{join}{where}"
    cap = "" if window is None else " LIMIT %s"
    cap_params = [] if window is None else [window + 1]
    return (
        "SELECT id, score, found FROM (SELECT id, score, COUNT(*) OVER () AS found"  # noqa: S608
        f" FROM ({scored}) r) s ORDER BY score, id DESC{cap}",
        [*head_params, *join_params, *where_params, *cap_params],
    )


def _window_sql(
    query: Query,
    match: Match,
    words: str,
    base_sql: str,
    base_params: list[Any],
    window: int | None,
    few: list[int] | None,
) -> tuple[str, list[Any]]:
    """``WITH m AS (…), hits AS (…)``: the window (at most ``window`` + 1 best matches, or
    newest candidates without words; every one when ``window`` is None) and, of it, the
    messages the viewer may see, with their thread, date and score."""
    cap = "" if window is None else " LIMIT %s"
    cap_params = [] if window is None else [window + 1]
    if query.terms:
        match_sql, match_params = _matches_sql(query, match, words, window, few)
        sql = (
            f"WITH m AS MATERIALIZED ({match_sql}),"  # noqa: S608
            f" hits AS (SELECT b.id, b.thread_id, b.date, m.score FROM m"
            f" JOIN ({base_sql}) b ON b.id = m.id)"
        )
        return sql, [*match_params, *base_params]
    sql = (
        "WITH m AS MATERIALIZED (SELECT b.id, b.thread_id, b.date, 0 AS score, 0 AS found"  # noqa: S608
        f" FROM ({base_sql}) b ORDER BY b.date DESC, b.id DESC{cap}),"
        " hits AS (SELECT id, thread_id, date, score FROM m)"
    )
    return sql, [*base_params, *cap_params]


def _page(
    query: Query,
    match: Match,
    words: str,
    base_sql: str,
    base_params: list[Any],
    window: int | None,
    limit: int,
    offset: int,
    few: list[int] | None,
) -> tuple[list[tuple[int, int, int]], int, bool, int]:
    """The page's (id, matches in its thread, total) rows, the number of threads found,
    whether the window cut matches off, and how many matches were scored."""
    with_sql, params = _window_sql(query, match, words, base_sql, base_params, window, few)
    # The compiled visibility query and constants only; every value is a parameter.
    sql = (
        f"{with_sql}, ranked AS ("  # noqa: S608
        f" SELECT id, score, date, COUNT(*) OVER (PARTITION BY {THREAD}) AS in_thread,"
        f" ROW_NUMBER() OVER (PARTITION BY {THREAD} ORDER BY score, date DESC, id DESC) AS nth"
        " FROM hits)"
        " SELECT id, in_thread, COUNT(*) OVER () AS total, (SELECT COUNT(*) FROM m) AS windowed,"
        " (SELECT MAX(found) FROM m) AS found"
        " FROM ranked WHERE nth = 1 ORDER BY score, date DESC, id DESC LIMIT %s OFFSET %s"
    )
    with connection.cursor() as cursor, _index_first(cursor, bool(query.terms)):
        cursor.execute(sql, [*params, limit, offset])
        rows = cursor.fetchall()
        if rows:
            count, windowed, found = int(rows[0][2]), int(rows[0][3]), int(rows[0][4] or 0)
        else:
            cursor.execute(
                f"{with_sql} SELECT (SELECT COUNT(DISTINCT {THREAD}) FROM hits),"  # noqa: S608
                " (SELECT COUNT(*) FROM m), (SELECT COALESCE(MAX(found), 0) FROM m)",
                params,
            )
            count, windowed, found = (int(x) for x in cursor.fetchone())
    cut = window is not None and windowed > window
    return [(r[0], r[1], r[2]) for r in rows], count, cut, found


@contextmanager
def _index_first(cursor: Any, words: bool) -> Iterator[None]:
    """PostgreSQL, for a query with words: the index is read, never the whole table.
    The planner guesses a word it holds no statistics for in half as many documents as
    the rarest it does; forty such words joined by ``|`` (a prefix spelt out) look like
    a quarter of the table, and it read every row (1.5 s at a million messages) where
    the index held 4 % of them."""
    if not words or connection.vendor != "postgresql":
        yield
        return
    cursor.execute("SET enable_seqscan = off")
    try:
        yield
    except BaseException:
        # Within a transaction, the one the failed statement aborted takes the setting
        # back as it rolls back (to its savepoint, if any); asked now, it would refuse.
        if not connection.in_atomic_block:
            cursor.execute("RESET enable_seqscan")
        raise
    cursor.execute("RESET enable_seqscan")


def _in_thread(
    base_sql: str, base_params: list[Any], query: Query, words: str, page: list[int]
) -> dict[int, int]:
    """For each message of ``page`` (its thread's best match), how many messages of its
    thread match and the viewer may see: counted apart when the window cut matches off.
    ``words``: PostgreSQL's ``tsquery`` of the query's words."""
    threads = dict(Message.objects.filter(pk__in=page).values_list("pk", "thread_id"))
    members = list(
        Message.objects.filter(
            Q(thread_id__in=[t for t in threads.values() if t]) | Q(pk__in=page)
        ).values_list("pk", flat=True)
    )
    if query.terms:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                # Each member's document read by its id and its words checked here:
                # asked through MATCH, FTS5 seeks every member in the list of every word
                # a prefix was spelt out as (50 to 90 ms for a page's threads).
                marks = ", ".join("%s" for _ in members)
                cursor.execute(
                    "SELECT rowid, subject, sender, recipients, body, attachments"  # noqa: S608
                    f" FROM search_fts WHERE rowid IN ({marks})",
                    members,
                )
                members = [row[0] for row in cursor.fetchall() if _holds(query, row[1:])]
            else:
                # The members' documents by their ids first: asked together, the planner
                # may read every document holding the words instead (30 ms for a
                # phrase of two words in 0.3 % of a million messages).
                cursor.execute(
                    "WITH d AS MATERIALIZED (SELECT message_id, document FROM search_document"
                    " WHERE message_id = ANY(%s)) SELECT message_id FROM d"
                    " WHERE document @@ %s::tsquery",
                    [members, words],
                )
                members = [r[0] for r in cursor.fetchall()]
    seen = _of_members(base_sql, base_params, members)
    per_thread: dict[int, int] = {}
    for pk, thread in seen:
        key = thread if thread is not None else -pk
        per_thread[key] = per_thread.get(key, 0) + 1
    return {pk: per_thread.get(t if t is not None else -pk, 1) for pk, t in threads.items()}


_COLUMNS = {FIELD_ANY: (0, 1, 2, 3, 4), FIELD_SENDER: (1,), FIELD_RECIPIENTS: (2,)}


def _holds(query: Query, fields: Sequence[str | None]) -> bool:
    """Whether a document (its subject, senders, recipients, body and attachment names,
    each the index's words joined by spaces) holds every term of ``query``, as the
    index's MATCH would say: the term's words next to each other in one of its fields,
    the last one as the start of a word for a prefix."""
    for term in query.terms:
        head, last = list(term.words[:-1]), term.words[-1]
        found = False
        for column in _COLUMNS[term.field]:
            words = (fields[column] or "").split()
            for i in range(len(head), len(words)):
                word = words[i]
                if (word == last or (term.prefix and word.startswith(last))) and words[
                    i - len(head) : i
                ] == head:
                    found = True
                    break
            if found:
                break
        if not found:
            return False
    return True


def _of_members(
    base_sql: str, base_params: list[Any], members: list[int]
) -> list[tuple[int, int | None]]:
    """(id, thread) of the ``members`` in the candidates ``base_sql``: tested id by id
    (the list leads the join), however the database would start the candidates on their
    own (an own-copy filter could make it walk every unread message of the viewer)."""
    if not members:
        return []
    if connection.vendor == "sqlite":
        ids = ", ".join("(%s)" for _ in members)
        sql = f"SELECT b.id, b.thread_id FROM (VALUES {ids}) v CROSS JOIN ({base_sql}) b"  # noqa: S608
        sql += " ON b.id = v.column1"
        params = [*members, *base_params]
    else:
        sql = "SELECT b.id, b.thread_id FROM unnest(%s::bigint[]) v(id)"
        sql += f" JOIN ({base_sql}) b ON b.id = v.id"
        params = [members, *base_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(r[0], r[1]) for r in cursor.fetchall()]


# --- highlighting ----------------------------------------------------------------------


def _matches(word: str, words: frozenset[str], prefixes: tuple[str, ...]) -> bool:
    folded = normalise(word) if not word.isascii() else word.lower()
    return folded in words or folded.startswith(prefixes)


def _sought(query: Query) -> tuple[frozenset[str], tuple[str, ...]]:
    """The query's words and the starts of words it looks for."""
    return frozenset(query.words), tuple(query.prefixes)


def _marked(text: str, query: Query) -> str:
    out, last = [], 0
    words, prefixes = _sought(query)
    for m in _WORD.finditer(text):
        if _matches(m.group(0), words, prefixes):
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
    words, prefixes = _sought(query)
    for m in _WORD.finditer(text):
        if _matches(m.group(0), words, prefixes):
            start = max(0, m.start() - SNIPPET_CHARS // 3)
            break
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    piece = text[start : start + SNIPPET_CHARS]
    lead = "… " if start else ""
    tail = " …" if start + SNIPPET_CHARS < len(text) else ""
    return mark_safe(html.escape(lead) + _marked(piece, query) + html.escape(tail))  # noqa: S308
