"""The sales inbox (SPEC F14): a user's own mailbox, read as conversations, ordered for selling.

Only the signed-in user's own mail is read here: the folders of their active mailboxes and
the ``Location`` rows in them (decision 020: a mailbox's list is its owner's alone). A
conversation is a thread within one folder (a message whose thread is unknown, because it
is not parsed yet or could not be, is a conversation of its own); it shows its newest
message there, and is unread or flagged when any of its messages in the folder is.

Its *stream* says what it is to a salesperson (decision 028):

- ``deals``: a message of it is linked to a contact with an open deal, or to an open
  deal, that the user may view; ordered by the deal's amount (a contact's largest open
  deal), then its closing date (soonest first), then the newest mail;
- ``contacts`` / ``leads``: otherwise, linked to a contact / lead the user may view;
- ``others``: the rest; these three newest first.

Tags (``mail.tags``): a conversation holds the tags of its messages in the folder, and a
tag filter keeps the conversations with a message holding the tag. It starts from the
tag's messages (index (tag, message)), finds their locations in the folders (index on the
message) and their conversations by key (the unique (folder, key) index): no probe per
conversation walked.

Speed: each location carries its message's thread and date (``Location.thread``,
``Location.date``, kept by every writer), indexed by folder. A page walks the folder's
newest locations and keeps each thread's newest one (an index probe per row), so the
first page costs a few dozen probes however large the folder; a stream is a condition on
that walk, and the deals stream ranks only the threads of open deals' mail. Counting reads
the folder's index once.
"""

# SQL here is built from quoted table names and fixed text; every value is a parameter.
# ruff: noqa: S608
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import F, Q, QuerySet, Sum

from crmail.crm.models import Account, Contact, Deal, EmailAddress, Lead, StageKind
from crmail.mail import tags as mail_tags
from crmail.mail.models import Message, MessageTag, Tag
from crmail.mailboxes.models import Conversation, ConversationLink, Folder, Location
from crmail.people import access
from crmail.people.models import User

STREAMS = ("deals", "contacts", "leads", "others")
ROLE_ORDER = ("inbox", "sent", "drafts", "trash", "junk", "archive")
MAX_LIMIT = 200


class NoSuchFolder(Exception):
    """The folder is not one of the user's active mailboxes' (answer 404)."""


@dataclass(frozen=True)
class FolderCount:
    folder: Folder
    unread: int
    total: int


@dataclass(frozen=True)
class RecordRef:
    """A record a conversation is linked to, as the user may view it."""

    module: str
    id: int
    name: str


@dataclass
class Entry:
    """One conversation of a folder: its newest message there, and what it adds up to."""

    message: Message
    location_id: int
    folder_id: int
    mailbox_id: int
    thread_id: int | None
    count: int
    unread: bool
    flagged: bool
    stream: str
    records: list[RecordRef] = field(default_factory=list)
    sender_known: bool = True
    tags: list[str] = field(default_factory=list)  # of its messages in the folder


@dataclass(frozen=True)
class StreamCount:
    stream: str
    unread: int
    total: int


@dataclass(frozen=True)
class InboxPage:
    items: list[Entry]
    count: int
    limit: int
    offset: int
    # A stream's page counts every stream on the way: the tabs take them from here.
    streams: tuple[StreamCount, ...] = ()


# --------------------------------------------------------------------------- folders


def user_folders(user: User) -> QuerySet[Folder]:
    """The mapped folders of ``user``'s active mailboxes (those crmail syncs)."""
    return Folder.objects.filter(
        mailbox__owner_id=user.pk,
        mailbox__is_active=True,
        selectable=True,
        exists_on_server=True,
        sync_enabled=True,
    ).select_related("mailbox")


def own_folder(user: User, folder_id: int) -> Folder:
    """One of ``user``'s folders, or ``NoSuchFolder`` (another user's answers the same)."""
    folder = user_folders(user).filter(pk=folder_id).first()
    if folder is None:
        raise NoSuchFolder("No such folder in your mailboxes.")
    return folder


def _folder_rank(folder: Folder) -> tuple[int, int, str, int]:
    role = ROLE_ORDER.index(folder.role) if folder.role in ROLE_ORDER else len(ROLE_ORDER)
    return (folder.mailbox_id, role, folder.name.casefold(), folder.pk)


def folders(user: User) -> list[FolderCount]:
    """Each mapped folder of the user's active mailboxes with its unread and total messages:
    Inbox, Sent, Drafts, Trash, Junk, Archive first, then the others by name."""
    rows = sorted(user_folders(user), key=_folder_rank)
    counts = {
        r["folder_id"]: (r["unread"] or 0, r["total"] or 0)
        for r in Conversation.objects.filter(folder__in=[f.pk for f in rows])
        .values("folder_id")
        .annotate(total=Sum("messages"), unread=Sum("unread"))
    }
    return [FolderCount(f, *counts.get(f.pk, (0, 0))) for f in rows]


def _scope_folders(user: User, folder: Folder | None) -> list[int]:
    if folder is not None:
        return [own_folder(user, folder.pk).pk]
    return list(user_folders(user).filter(role="inbox").values_list("pk", flat=True))


# --------------------------------------------------------------------------- SQL pieces

_q = connection.ops.quote_name
CONV = _q(Conversation._meta.db_table)
CLINK = _q(ConversationLink._meta.db_table)
LOC = _q(Location._meta.db_table)
MTAG = _q(MessageTag._meta.db_table)
TAG = _q(Tag._meta.db_table)
KEY = _q("key")
NONE_SQL = "SELECT 0 WHERE 1 = 0"


def _subquery(qs: QuerySet[Any]) -> tuple[str, list[Any]]:
    """The SQL of a one-column queryset, to use after IN; nothing when it can match none."""
    try:
        sql, params = qs.order_by().query.sql_with_params()
    except EmptyResultSet:
        return NONE_SQL, []
    return sql, list(params)


def _open_deals(user: User) -> QuerySet[Deal]:
    return access.visible(user, Deal).filter(stage__kind=StageKind.OPEN)


@dataclass(frozen=True)
class _Conditions:
    """SQL: the stream number (0 deals, 1 contacts, 2 leads, 3 others) a conversation link
    row ``k`` gives, from the records ``user`` may view."""

    case: str
    params: list[Any]

    @classmethod
    def of(cls, user: User) -> _Conditions:
        deals = _open_deals(user)
        by_contact, p1 = _subquery(deals.filter(contact__isnull=False).values("contact_id"))
        by_deal, p2 = _subquery(deals.values("pk"))
        contacts, p3 = _subquery(access.visible(user, Contact).values("pk"))
        leads, p4 = _subquery(access.visible(user, Lead).values("pk"))
        return cls(
            f"CASE WHEN (k.module = 'contacts' AND k.record_id IN ({by_contact})) "
            f"OR (k.module = 'deals' AND k.record_id IN ({by_deal})) THEN 0 "
            f"WHEN k.module = 'contacts' AND k.record_id IN ({contacts}) THEN 1 "
            f"WHEN k.module = 'leads' AND k.record_id IN ({leads}) THEN 2 ELSE 3 END",
            p1 + p2 + p3 + p4,
        )

    def kind(self) -> tuple[str, list[Any]]:
        """SQL: the stream number of conversation ``c``, from its links."""
        return (
            f"COALESCE((SELECT MIN({self.case}) FROM {CLINK} k WHERE k.conversation_id = c.id), 3)",
            self.params,
        )


def _marks(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


Sql = tuple[str, list[Any]]


def _tagged(folder_ids: list[int], tag_id: int) -> Sql:
    """SQL: the ids of the conversations of these folders with a message holding the tag.

    From the tag's messages outwards: each one's few locations (index on the message),
    then their conversations in these folders (index (folder, key)). SQLite keeps the
    order of a CROSS JOIN; without statistics it would rather walk the folder's locations
    and probe the tag for each."""
    return (
        f"SELECT t.id FROM {MTAG} g CROSS JOIN {LOC} l CROSS JOIN {CONV} t "
        "WHERE g.tag_id = %s AND l.message_id = g.message_id "
        f"AND t.folder_id = +l.folder_id AND t.{KEY} = COALESCE(l.thread_id, -l.id) "
        f"AND t.folder_id IN ({_marks(folder_ids)})",
        [tag_id, *folder_ids],
    )


def _holding(folder_ids: list[int], messages: QuerySet[Message]) -> Sql:
    """SQL: the ids of the conversations of these folders with a message among
    ``messages`` (a one-column query of message ids)."""
    sql, params = _subquery(messages.values("pk"))
    return (
        f"SELECT t.id FROM {LOC} l CROSS JOIN {CONV} t WHERE l.message_id IN ({sql}) "
        f"AND t.folder_id = +l.folder_id AND t.{KEY} = COALESCE(l.thread_id, -l.id) "
        f"AND t.folder_id IN ({_marks(folder_ids)})",
        [*params, *folder_ids],
    )


def _both(first: Sql | None, second: Sql | None) -> Sql | None:
    """Conversation ids in both (either when the other is None)."""
    if first is None or second is None:
        return first or second
    return (
        f"SELECT b1.id FROM ({first[0]}) b1 WHERE b1.id IN ({second[0]})",
        [*first[1], *second[1]],
    )


def _where(
    folder_ids: list[int],
    unread: bool | None,
    kind: Sql | None = None,
    tagged: Sql | None = None,
) -> Sql:
    """SQL conditions on conversation ``c``: in these folders, (un)read, of a stream, with
    a message holding a tag."""
    parts = [f"c.folder_id IN ({_marks(folder_ids)})"]
    params: list[Any] = list(folder_ids)
    if unread is not None:
        parts.append("c.unread > 0" if unread else "c.unread = 0")
    if kind is not None:
        parts.append(f"{kind[0]} = %s")
        params += kind[1]
    if tagged is not None:
        parts.append(f"c.id IN ({tagged[0]})")
        params += tagged[1]
    return " AND ".join(parts), params


# What a page shows of a conversation row (``_Row``), read with the walk that finds it.
ROW = "c.id, c.folder_id, c.key, c.location_id, c.messages, c.unread, c.flagged"


@dataclass(frozen=True)
class _Row:
    id: int
    folder_id: int
    key: int
    location_id: int
    messages: int
    unread: int
    flagged: int


def _walk(where: tuple[str, list[Any]], limit: int, offset: int) -> list[_Row]:
    """The conversations that meet ``where``, newest first."""
    sql = (
        f"SELECT {ROW} FROM {CONV} c WHERE {where[0]} "
        "ORDER BY c.date DESC, c.location_id DESC LIMIT %s OFFSET %s"
    )
    return [_Row(*r) for r in _fetch(sql, [*where[1], limit, offset])]


def _rows(ids: list[int]) -> list[_Row]:
    """These conversations, in this order."""
    if not ids:
        return []
    got = {
        r[0]: _Row(*r)
        for r in _fetch(f"SELECT {ROW} FROM {CONV} c WHERE c.id IN ({_marks(ids)})", ids)
    }
    return [got[i] for i in ids if i in got]


# --------------------------------------------------------------------------- counting


def _count(where: tuple[str, list[Any]]) -> int:
    return _fetch(f"SELECT COUNT(*) FROM {CONV} c WHERE {where[0]}", where[1])[0][0]


def _linked_kinds(
    folder_ids: list[int], conditions: _Conditions, tagged: Sql | None = None
) -> dict[str, tuple[int, int]]:
    """{stream: (unread, total)} of the conversations linked to records the user may view
    (deals, contacts, leads), each counted in its first stream. A conversation linked to
    nothing else than records of other modules (accounts) or that the user may not view
    comes out as others (3): left for ``_stream_counts`` to count as the rest."""
    tag_sql, tag_params = (
        ("", []) if tagged is None else (f"AND k.conversation_id IN ({tagged[0]}) ", tagged[1])
    )
    sql = (
        "SELECT t.kind, COUNT(*), SUM(t.unread) FROM ("
        f"SELECT MIN({conditions.case}) AS kind, "
        f"MAX(CASE WHEN k.unread THEN 1 ELSE 0 END) AS unread FROM {CLINK} k "
        f"WHERE k.folder_id IN ({_marks(folder_ids)}) "
        f"{tag_sql}GROUP BY k.conversation_id) t GROUP BY t.kind"
    )
    out = {s: (0, 0) for s in STREAMS[:3]}
    params = [*conditions.params, *folder_ids, *tag_params]
    for kind, total, unread in _fetch(sql, params):
        if kind < 3:
            out[STREAMS[kind]] = (int(unread or 0), int(total))
    return out


def _stream_counts(
    folder_ids: list[int], conditions: _Conditions, tagged: Sql | None = None
) -> dict[str, tuple[int, int]]:
    """{stream: (unread, total)} for all four streams."""
    linked = _linked_kinds(folder_ids, conditions, tagged)
    total = _count(_where(folder_ids, None, tagged=tagged))
    unread = _count(_where(folder_ids, True, tagged=tagged))
    linked["others"] = (
        unread - sum(u for u, _ in linked.values()),
        total - sum(t for _, t in linked.values()),
    )
    return linked


def _tag_id(tag: str | None) -> int | None:
    """The id of the tag named ``tag``; 0 when there is no such tag (nothing holds it)."""
    if tag is None:
        return None
    found = mail_tags.find(tag)
    return found.pk if found is not None else 0


def stream_counts(
    user: User,
    folder: Folder | None = None,
    tag: str | None = None,
    within: QuerySet[Message] | None = None,
) -> list[StreamCount]:
    """Unread and total conversations of each stream, for the stream tabs (of the
    conversations with a message tagged ``tag``, when given)."""
    folder_ids = _scope_folders(user, folder)
    tag_id = _tag_id(tag)
    if not folder_ids or tag_id == 0:
        return [StreamCount(s, 0, 0) for s in STREAMS]
    tagged = _tagged(folder_ids, tag_id) if tag_id else None
    if within is not None:
        tagged = _both(tagged, _holding(folder_ids, within))
    counts = _stream_counts(folder_ids, _Conditions.of(user), tagged)
    return [StreamCount(s, *counts[s]) for s in STREAMS]


# --------------------------------------------------------------------------- the deals stream


def _deal_threads(
    folder_ids: list[int],
    user: User,
    unread: bool | None,
    limit: int,
    offset: int,
    tagged: Sql | None = None,
) -> tuple[list[tuple[int, int | None]], int]:
    """([(conversation id, ranking deal id)], count) of the deals stream's page: the
    folder's links to the user's open deals and their contacts, best deal per conversation."""
    deals, params = _subquery(
        _open_deals(user).values(
            d_id=F("pk"),
            d_contact=F("contact_id"),
            d_amount=F("amount"),
            d_closing=F("closing_date"),
        )
    )
    marks = _marks(folder_ids)

    def hits(column: str) -> str:
        return (
            "SELECT k.conversation_id AS cid, d.d_id AS deal_id, d.d_amount AS amount, "
            f"d.d_closing AS closing FROM ({deals}) d JOIN {CLINK} k "
            f"ON k.module = %s AND k.record_id = d.{column} AND k.folder_id IN ({marks})"
        )

    ranked = (
        "SELECT cid, deal_id, amount, closing, ROW_NUMBER() OVER (PARTITION BY cid "
        "ORDER BY amount DESC NULLS LAST, closing ASC NULLS LAST, deal_id ASC) AS rn "
        f"FROM ({hits('d_contact')} UNION ALL {hits('d_id')}) h"
    )
    unread_sql = "" if unread is None else ("AND c.unread > 0" if unread else "AND c.unread = 0")
    tag_sql = "" if tagged is None else f" AND c.id IN ({tagged[0]})"
    best = (
        f"SELECT r.cid, r.deal_id, r.amount, r.closing, c.date, c.location_id FROM ({ranked}) r "
        f"JOIN {CONV} c ON c.id = r.cid WHERE r.rn = 1 {unread_sql}{tag_sql}"
    )
    base = [*params, "contacts", *folder_ids, *params, "deals", *folder_ids]
    base += [] if tagged is None else tagged[1]
    rows = _fetch(
        f"SELECT b.cid, b.deal_id, COUNT(*) OVER () FROM ({best}) b "
        "ORDER BY b.amount DESC NULLS LAST, b.closing ASC NULLS LAST, b.date DESC, "
        "b.location_id DESC LIMIT %s OFFSET %s",
        [*base, limit, offset],
    )
    if not rows:
        count = 0 if offset == 0 else _fetch(f"SELECT COUNT(*) FROM ({best}) b", base)[0][0]
        return [], count
    return [(cid, deal_id) for cid, deal_id, _ in rows], rows[0][2]


# --------------------------------------------------------------------------- the page


def page(
    user: User,
    *,
    stream: str | None = None,
    folder: Folder | None = None,
    unread: bool | None = None,
    tag: str | None = None,
    limit: int = 50,
    offset: int = 0,
    tabs: bool = False,
    within: QuerySet[Message] | None = None,
) -> InboxPage:
    """A page of the user's conversations: of ``folder`` (else their Inbox folders), of
    one stream or all, only unread (or only read) ones when asked, only those with a
    message tagged ``tag`` when given, only those with a message ``within`` a set (a
    filter of a layer above, such as email intelligence's) when given. With ``tabs``,
    the counts of every stream come with it (``InboxPage.streams``), as they do anyway
    for a page of the contacts, leads or others stream."""
    if stream is not None and stream not in STREAMS:
        raise ValueError(f"No such stream: choose one of {', '.join(STREAMS)}.")
    limit = max(1, min(int(limit), MAX_LIMIT))
    offset = max(0, int(offset))
    folder_ids = _scope_folders(user, folder)
    tag_id = _tag_id(tag)
    if not folder_ids or tag_id == 0:
        return InboxPage([], 0, limit, offset)
    tagged = _tagged(folder_ids, tag_id) if tag_id else None
    if within is not None:
        tagged = _both(tagged, _holding(folder_ids, within))
    conditions = _Conditions.of(user)
    counts = None
    if tabs or stream in STREAMS[1:]:
        counts = _stream_counts(folder_ids, conditions, tagged)
    if stream == "deals":
        found, count = _deal_threads(folder_ids, user, unread, limit, offset, tagged)
        rows = _rows([cid for cid, _ in found])
    else:
        kind = None
        if stream is not None:
            case, params = conditions.kind()
            kind = (case, [*params, STREAMS.index(stream)])
        where = _where(folder_ids, unread, kind, tagged)
        rows = _walk(where, limit, offset)
        count = _count(where) if counts is None else _counted(counts, stream, unread)
    streams = tuple(StreamCount(s, *counts[s]) for s in STREAMS) if counts else ()
    return InboxPage(_entries(user, rows), count, limit, offset, streams)


def _counted(counts: dict[str, tuple[int, int]], stream: str | None, unread: bool | None) -> int:
    """How many conversations of ``stream`` (None: all) meet ``unread``, from the counts."""
    chosen = STREAMS if stream is None else (stream,)
    unread_n = sum(counts[s][0] for s in chosen)
    total = sum(counts[s][1] for s in chosen)
    return total if unread is None else (unread_n if unread else total - unread_n)


# --------------------------------------------------------------------------- entries


# What a page shows of a conversation's newest message (``Entry.message``): a message's
# other fields, its body above all, are not read for a page (one query each if asked).
SHOWN = ("subject", "snippet", "from_name", "from_address", "date", "parse_state")


def _entries(user: User, conversations: list[_Row]) -> list[Entry]:
    """The page's conversations, built in a fixed number of queries."""
    if not conversations:
        return []
    locations = (
        Location.objects.filter(pk__in=[c.location_id for c in conversations])
        .select_related("message")
        .only("mailbox_id", "message_id", *(f"message__{f}" for f in SHOWN))
        .in_bulk()
    )
    conversations = [c for c in conversations if c.location_id in locations]
    links = _visible_links(user, [c.id for c in conversations])
    deals_by_contact = _open_deals_of(user, {rid for mod, rid in _all(links) if mod == "contacts"})
    direct_deals = _open_deal_ids(user, {rid for mod, rid in _all(links) if mod == "deals"})
    known = _known_senders(
        user, {locations[c.location_id].message.from_address for c in conversations}
    )
    tags = _conversation_tags([c.id for c in conversations])
    entries = []
    for conv in conversations:
        loc = locations[conv.location_id]
        refs = {(ref.module, ref.id): ref for ref in links.get(conv.id, ())}
        deals = [d for (m, rid) in refs if m == "contacts" for d in deals_by_contact.get(rid, [])]
        deals += [direct_deals[rid] for (m, rid) in refs if m == "deals" and rid in direct_deals]
        stream = _stream_of(refs, deals)
        if stream == "deals":
            best = min(deals, key=_deal_rank)
            refs.setdefault(("deals", best.pk), RecordRef("deals", best.pk, best.name))
        message = loc.message
        entries.append(
            Entry(
                message=message,
                location_id=loc.pk,
                folder_id=conv.folder_id,
                mailbox_id=loc.mailbox_id,
                thread_id=conv.key if conv.key > 0 else None,
                count=conv.messages,
                unread=conv.unread > 0,
                flagged=conv.flagged > 0,
                stream=stream,
                records=sorted(refs.values(), key=_ref_order),
                sender_known=not message.from_address or message.from_address.lower() in known,
                tags=tags.get(conv.id, []),
            )
        )
    return entries


def _conversation_tags(conversation_ids: list[int]) -> dict[int, list[str]]:
    """{conversation id: the tags its messages in the folder hold, alphabetical}, in one
    statement: a thread's locations by (folder, thread), a lone message's by its id."""
    if not conversation_ids:
        return {}
    marks = _marks(conversation_ids)
    held = (
        f"SELECT t.id AS cid, g.tag_id FROM {CONV} t JOIN {LOC} l "
        f"ON l.folder_id = t.folder_id AND l.thread_id = t.{KEY} "
        f"JOIN {MTAG} g ON g.message_id = l.message_id WHERE t.id IN ({marks}) AND t.{KEY} > 0 "
        f"UNION SELECT t.id, g.tag_id FROM {CONV} t JOIN {LOC} l ON l.id = -t.{KEY} "
        f"JOIN {MTAG} g ON g.message_id = l.message_id WHERE t.id IN ({marks}) AND t.{KEY} < 0"
    )
    rows = _fetch(
        f"SELECT h.cid, n.name FROM ({held}) h JOIN {TAG} n ON n.id = h.tag_id ORDER BY n.{KEY}",
        [*conversation_ids, *conversation_ids],
    )
    out: dict[int, list[str]] = defaultdict(list)
    for cid, name in rows:
        out[cid].append(name)
    return dict(out)


def _all(links: dict[int, list[RecordRef]]) -> set[tuple[str, int]]:
    return {(r.module, r.id) for refs in links.values() for r in refs}


MODULE_ORDER = {"deals": 0, "contacts": 1, "leads": 2, "accounts": 3}


def _ref_order(ref: RecordRef) -> tuple[int, str, int]:
    return (MODULE_ORDER.get(ref.module, 9), ref.name.casefold(), ref.id)


def _deal_rank(deal: Deal) -> tuple[bool, Decimal, bool, date, int]:
    return (
        deal.amount is None,
        -(deal.amount or Decimal(0)),
        deal.closing_date is None,
        deal.closing_date or date.max,
        deal.pk,
    )


def _stream_of(refs: dict[tuple[str, int], RecordRef], deals: list[Deal]) -> str:
    if deals:
        return "deals"
    modules = {mod for mod, _ in refs}
    if "contacts" in modules:
        return "contacts"
    if "leads" in modules:
        return "leads"
    return "others"


def _visible_links(user: User, conversation_ids: Iterable[int]) -> dict[int, list[RecordRef]]:
    """{conversation id: the records it is linked to that ``user`` may view}."""
    pairs = set(
        ConversationLink.objects.filter(conversation_id__in=list(conversation_ids)).values_list(
            "conversation_id", "module", "record_id"
        )
    )
    wanted: dict[str, set[int]] = defaultdict(set)
    for _, module, record_id in pairs:
        wanted[module].add(record_id)
    names: dict[tuple[str, int], str] = {}
    for module, model in (("leads", Lead), ("contacts", Contact)):
        if wanted.get(module):
            for pk, first, last in (
                access.visible(user, model)
                .filter(pk__in=wanted[module])
                .values_list("pk", "first_name", "last_name")
            ):
                names[(module, pk)] = f"{first} {last}".strip()
    for module, named in (("accounts", Account), ("deals", Deal)):
        if wanted.get(module):
            rows = access.visible(user, named).filter(pk__in=wanted[module])
            # The type checker's Django plugin joins Account | Deal to Record, which has no name.
            for pk, name in rows.values_list("pk", "name"):  # type: ignore[misc]
                names[(module, pk)] = name
    out: dict[int, list[RecordRef]] = defaultdict(list)
    for conversation_id, module, record_id in sorted(pairs):
        name = names.get((module, record_id))
        if name is not None:
            out[conversation_id].append(RecordRef(module, record_id, name))
    return out


def _open_deals_of(user: User, contact_ids: set[int]) -> dict[int, list[Deal]]:
    out: dict[int, list[Deal]] = defaultdict(list)
    if contact_ids:
        for deal in (
            _open_deals(user)
            .filter(contact_id__in=contact_ids)
            .only("pk", "name", "amount", "closing_date", "contact_id")
        ):
            out[deal.contact_id].append(deal)  # type: ignore[index]
    return out


def _open_deal_ids(user: User, deal_ids: set[int]) -> dict[int, Deal]:
    if not deal_ids:
        return {}
    return {
        d.pk: d
        for d in _open_deals(user)
        .filter(pk__in=deal_ids)
        .only("pk", "name", "amount", "closing_date", "contact_id")
    }


def _known_senders(user: User, addresses: set[str]) -> set[str]:
    """Of these sender addresses, those a lead or contact the user may view has."""
    wanted = {a.lower() for a in addresses if a}
    if not wanted:
        return set()
    rows = EmailAddress.objects.filter(address__in=wanted).filter(
        Q(contact__in=access.visible(user, Contact)) | Q(lead__in=access.visible(user, Lead))
    )
    return set(rows.values_list("address", flat=True))
