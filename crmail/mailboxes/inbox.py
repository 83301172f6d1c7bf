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
from django.db.models import Count, F, Q, QuerySet

from crmail.crm.models import Account, Contact, Deal, EmailAddress, Lead, StageKind
from crmail.linking.models import Link
from crmail.mail.models import Message
from crmail.mailboxes.models import Folder, Location
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


@dataclass(frozen=True)
class InboxPage:
    items: list[Entry]
    count: int
    limit: int
    offset: int


@dataclass(frozen=True)
class StreamCount:
    stream: str
    unread: int
    total: int


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
        r["folder_id"]: (r["unread"], r["total"])
        for r in Location.objects.filter(folder__in=[f.pk for f in rows])
        .values("folder_id")
        .annotate(total=Count("pk"), unread=Count("pk", filter=Q(seen=False)))
    }
    return [FolderCount(f, *counts.get(f.pk, (0, 0))) for f in rows]


def _scope_folders(user: User, folder: Folder | None) -> list[int]:
    if folder is not None:
        return [own_folder(user, folder.pk).pk]
    return list(user_folders(user).filter(role="inbox").values_list("pk", flat=True))


# --------------------------------------------------------------------------- SQL pieces

_q = connection.ops.quote_name
LOC = _q(Location._meta.db_table)
LINK = _q(Link._meta.db_table)
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
    """SQL conditions on a link row ``k``: it puts its message in a stream."""

    deal: tuple[str, list[Any]]
    contact: tuple[str, list[Any]]
    lead: tuple[str, list[Any]]

    @classmethod
    def of(cls, user: User) -> _Conditions:
        deals = _open_deals(user)
        by_contact, p1 = _subquery(deals.filter(contact__isnull=False).values("contact_id"))
        by_deal, p2 = _subquery(deals.values("pk"))
        contacts, p3 = _subquery(access.visible(user, Contact).values("pk"))
        leads, p4 = _subquery(access.visible(user, Lead).values("pk"))
        return cls(
            deal=(
                f"((k.module = 'contacts' AND k.record_id IN ({by_contact})) "
                f"OR (k.module = 'deals' AND k.record_id IN ({by_deal})))",
                p1 + p2,
            ),
            contact=(f"(k.module = 'contacts' AND k.record_id IN ({contacts}))", p3),
            lead=(f"(k.module = 'leads' AND k.record_id IN ({leads}))", p4),
        )


def _kind(conditions: _Conditions) -> tuple[str, list[Any]]:
    """SQL: the stream number (0 deals, 1 contacts, 2 leads, 3 others) of the conversation
    of walked row ``l``, from the links of its messages in the folder."""
    deal, p_deal = conditions.deal
    contact, p_contact = conditions.contact
    lead, p_lead = conditions.lead
    case = f"MIN(CASE WHEN {deal} THEN 0 WHEN {contact} THEN 1 WHEN {lead} THEN 2 ELSE 3 END)"
    params = p_deal + p_contact + p_lead
    return (
        f"COALESCE((SELECT {case} FROM {LOC} m JOIN {LINK} k ON k.message_id = m.message_id "
        "WHERE m.folder_id = l.folder_id AND m.thread_id = l.thread_id), "
        f"(SELECT {case} FROM {LINK} k WHERE k.message_id = l.message_id "
        "AND l.thread_id IS NULL), 3)",
        params + params,
    )


NEWEST = (
    f"NOT EXISTS (SELECT 1 FROM {LOC} n WHERE n.folder_id = l.folder_id "
    "AND n.thread_id = l.thread_id AND (n.date > l.date OR (n.date = l.date AND n.id > l.id)))"
)
UNREAD_IN_THREAD = (
    f"(l.seen = %s OR EXISTS (SELECT 1 FROM {LOC} u WHERE u.folder_id = l.folder_id "
    "AND u.thread_id = l.thread_id AND u.seen = %s))"
)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def _stream_condition(stream: str, conditions: _Conditions) -> tuple[list[str], list[Any]]:
    kind, params = _kind(conditions)
    return [f"{kind} = %s"], [*params, STREAMS.index(stream)]


def _walk(
    folder_ids: list[int],
    where: list[str],
    params: list[Any],
    limit: int,
    offset: int,
) -> list[int]:
    """The newest location of each conversation that meets ``where``, newest first."""
    conditions = " AND ".join([f"l.folder_id IN ({_marks(folder_ids)})", NEWEST, *where])
    sql = (
        f"SELECT l.id FROM {LOC} l WHERE {conditions} "
        "ORDER BY l.date DESC, l.id DESC LIMIT %s OFFSET %s"
    )
    return [r[0] for r in _fetch(sql, [*folder_ids, *params, limit, offset])]


def _unread_where(unread: bool | None) -> tuple[list[str], list[Any]]:
    if unread is None:
        return [], []
    if unread:
        return [UNREAD_IN_THREAD], [False, False]
    return [f"NOT {UNREAD_IN_THREAD}"], [False, False]


# --------------------------------------------------------------------------- counting


def _count_threads(folder_ids: list[int], unread_only: bool = False) -> int:
    unread = " AND seen = %s" if unread_only else ""
    sql = (
        "SELECT COUNT(*) FROM (SELECT DISTINCT folder_id, "
        f"COALESCE(thread_id, -id) AS tk FROM {LOC} "
        f"WHERE folder_id IN ({_marks(folder_ids)}){unread}) t"
    )
    return _fetch(sql, [*folder_ids, *([False] if unread_only else [])])[0][0]


def _linked_kinds(folder_ids: list[int], conditions: _Conditions) -> dict[str, tuple[int, int]]:
    """{stream: (unread, total)} of the conversations linked to records the user may view
    (deals, contacts, leads), each counted in its first stream."""
    deal, p_deal = conditions.deal
    contact, p_contact = conditions.contact
    lead, p_lead = conditions.lead
    sql = (
        "SELECT t.kind, COUNT(*), SUM(CASE WHEN EXISTS (SELECT 1 FROM "
        f"{LOC} u WHERE u.folder_id = t.folder_id AND u.thread_id = t.tk AND u.seen = %s) "
        f"OR EXISTS (SELECT 1 FROM {LOC} u WHERE u.id = -t.tk AND u.seen = %s) "
        "THEN 1 ELSE 0 END) FROM ("
        "SELECT m.folder_id AS folder_id, COALESCE(m.thread_id, -m.id) AS tk, "
        f"MIN(CASE WHEN {deal} THEN 0 WHEN {contact} THEN 1 WHEN {lead} THEN 2 ELSE 3 END) "
        f"AS kind FROM {LOC} m JOIN {LINK} k ON k.message_id = m.message_id "
        f"WHERE m.folder_id IN ({_marks(folder_ids)}) "
        "AND k.module IN ('deals', 'contacts', 'leads') "
        "GROUP BY m.folder_id, COALESCE(m.thread_id, -m.id)) t GROUP BY t.kind"
    )
    params = [False, False, *p_deal, *p_contact, *p_lead, *folder_ids]
    out = {s: (0, 0) for s in STREAMS[:3]}
    for kind, total, unread in _fetch(sql, params):
        if kind < 3:
            out[STREAMS[kind]] = (int(unread or 0), int(total))
    return out


def stream_counts(user: User, folder: Folder | None = None) -> list[StreamCount]:
    """Unread and total conversations of each stream, for the stream tabs."""
    folder_ids = _scope_folders(user, folder)
    if not folder_ids:
        return [StreamCount(s, 0, 0) for s in STREAMS]
    linked = _linked_kinds(folder_ids, _Conditions.of(user))
    total = _count_threads(folder_ids)
    unread = _count_threads(folder_ids, unread_only=True)
    others = (
        unread - sum(u for u, _ in linked.values()),
        total - sum(t for _, t in linked.values()),
    )
    return [StreamCount(s, *linked[s]) for s in STREAMS[:3]] + [StreamCount("others", *others)]


# --------------------------------------------------------------------------- the deals stream


def _deal_threads(
    folder_ids: list[int],
    user: User,
    unread: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[int, int | None]], int]:
    """([(newest location id, ranking deal id)], count) of the deals stream's page."""
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
            "SELECT m.folder_id AS f, COALESCE(m.thread_id, -m.id) AS tk, d.d_id AS deal_id, "
            f"d.d_amount AS amount, d.d_closing AS closing FROM {LOC} m "
            f"JOIN {LINK} k ON k.message_id = m.message_id "
            f"JOIN ({deals}) d ON k.record_id = d.{column} "
            f"WHERE m.folder_id IN ({marks}) AND k.module = %s"
        )

    unread_sql = ""
    unread_params: list[Any] = []
    if unread is not None:
        unread_sql = (
            f"AND {'' if unread else 'NOT '}(EXISTS (SELECT 1 FROM {LOC} u "
            "WHERE u.folder_id = r.f AND u.thread_id = r.tk AND u.seen = %s) "
            f"OR EXISTS (SELECT 1 FROM {LOC} u WHERE u.id = -r.tk AND u.seen = %s))"
        )
        unread_params = [False, False]
    ranked = (
        "SELECT f, tk, deal_id, amount, closing, ROW_NUMBER() OVER (PARTITION BY f, tk "
        "ORDER BY amount DESC NULLS LAST, closing ASC NULLS LAST, deal_id ASC) AS rn "
        f"FROM ({hits('d_contact')} UNION ALL {hits('d_id')}) h"
    )
    best = (
        "SELECT r.f, r.tk, r.deal_id, r.amount, r.closing, "
        f"COALESCE((SELECT MAX(x.date) FROM {LOC} x WHERE x.folder_id = r.f "
        f"AND x.thread_id = r.tk), (SELECT x.date FROM {LOC} x WHERE x.id = -r.tk)) AS last "
        f"FROM ({ranked}) r WHERE r.rn = 1 {unread_sql}"
    )
    base = [*params, *folder_ids, "contacts", *params, *folder_ids, "deals", *unread_params]
    rows = _fetch(
        f"SELECT b.f, b.tk, b.deal_id, COUNT(*) OVER () FROM ({best}) b "
        "ORDER BY b.amount DESC NULLS LAST, b.closing ASC NULLS LAST, b.last DESC, b.tk DESC "
        "LIMIT %s OFFSET %s",
        [*base, limit, offset],
    )
    if not rows:
        count = 0 if offset == 0 else _fetch(f"SELECT COUNT(*) FROM ({best}) b", base)[0][0]
        return [], count
    newest = _newest_locations([(f, tk) for f, tk, _, _ in rows])
    found = [(newest[(f, tk)], deal_id) for f, tk, deal_id, _ in rows if (f, tk) in newest]
    return found, rows[0][3]


def _newest_locations(keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """{(folder id, thread key): its newest location id} for a page of conversations."""
    keys = list(keys)
    by_thread = [(f, tk) for f, tk in keys if tk > 0]
    own = [-tk for _, tk in keys if tk < 0]
    out: dict[tuple[int, int], int] = {(f, -tk): -tk for f, tk in keys if tk < 0 and -tk in own}
    if by_thread:
        folder_ids = sorted({f for f, _ in by_thread})
        thread_ids = sorted({tk for _, tk in by_thread})
        rows = (
            Location.objects.filter(folder_id__in=folder_ids, thread_id__in=thread_ids)
            .order_by("folder_id", "thread_id", "-date", "-pk")
            .values_list("folder_id", "thread_id", "pk")
        )
        for f, t, pk in rows:
            out.setdefault((f, t), pk)
    return {k: out[k] for k in keys if k in out}


# --------------------------------------------------------------------------- the page


def page(
    user: User,
    *,
    stream: str | None = None,
    folder: Folder | None = None,
    unread: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> InboxPage:
    """A page of the user's conversations: of ``folder`` (else their Inbox folders), of
    one stream or all, only unread (or only read) ones when asked."""
    if stream is not None and stream not in STREAMS:
        raise ValueError(f"No such stream: choose one of {', '.join(STREAMS)}.")
    limit = max(1, min(int(limit), MAX_LIMIT))
    offset = max(0, int(offset))
    folder_ids = _scope_folders(user, folder)
    if not folder_ids:
        return InboxPage([], 0, limit, offset)
    conditions = _Conditions.of(user)
    deal_of: dict[int, int | None] = {}
    if stream == "deals":
        found, count = _deal_threads(folder_ids, user, unread, limit, offset)
        ids = [loc for loc, _ in found]
        deal_of = dict(found)
    else:
        where, params = _unread_where(unread)
        if stream is not None:
            more, more_params = _stream_condition(stream, conditions)
            where, params = where + more, params + more_params
        ids = _walk(folder_ids, where, params, limit, offset)
        if stream is None:
            count = (
                _count_threads(folder_ids)
                if unread is None
                else _count_filtered(folder_ids, where, params)
            )
        else:
            count = _stream_total(user, folder_ids, conditions, stream, unread)
    return InboxPage(_entries(user, ids, deal_of), count, limit, offset)


def _count_filtered(folder_ids: list[int], where: list[str], params: list[Any]) -> int:
    conditions = " AND ".join([f"l.folder_id IN ({_marks(folder_ids)})", NEWEST, *where])
    sql = f"SELECT COUNT(*) FROM {LOC} l WHERE {conditions}"
    return _fetch(sql, [*folder_ids, *params])[0][0]


def _stream_total(
    user: User,
    folder_ids: list[int],
    conditions: _Conditions,
    stream: str,
    unread: bool | None,
) -> int:
    if unread is not None:
        where, params = _unread_where(unread)
        more, more_params = _stream_condition(stream, conditions)
        return _count_filtered(folder_ids, where + more, params + more_params)
    linked = _linked_kinds(folder_ids, conditions)
    if stream in linked:
        return linked[stream][1]
    return _count_threads(folder_ids) - sum(t for _, t in linked.values())


# --------------------------------------------------------------------------- entries


def _entries(user: User, location_ids: list[int], deal_of: dict[int, int | None]) -> list[Entry]:
    """The page's conversations, built in a fixed number of queries."""
    if not location_ids:
        return []
    locations = {
        loc.pk: loc
        for loc in Location.objects.filter(pk__in=location_ids).select_related("message")
    }
    rows = [locations[i] for i in location_ids if i in locations]
    thread_ids = sorted({loc.thread_id for loc in rows if loc.thread_id is not None})
    folder_ids = sorted({loc.folder_id for loc in rows})
    members: dict[tuple[int, int], list[tuple[int, bool, bool]]] = defaultdict(list)
    if thread_ids:
        for f, t, message_id, seen, flagged in Location.objects.filter(
            folder_id__in=folder_ids, thread_id__in=thread_ids
        ).values_list("folder_id", "thread_id", "message_id", "seen", "flagged"):
            members[(f, t)].append((message_id, seen, flagged))
    for loc in rows:
        if loc.thread_id is None:
            members[(loc.folder_id, -loc.pk)] = [(loc.message_id, loc.seen, loc.flagged)]

    def key(loc: Location) -> tuple[int, int]:
        return (loc.folder_id, loc.thread_id if loc.thread_id is not None else -loc.pk)

    message_ids = {m for group in members.values() for m, _, _ in group}
    links = _visible_links(user, message_ids)
    deals_by_contact = _open_deals_of(user, {rid for mod, rid in _all(links) if mod == "contacts"})
    direct_deals = _open_deal_ids(user, {rid for mod, rid in _all(links) if mod == "deals"})
    known = _known_senders(user, {loc.message.from_address for loc in rows})
    entries = []
    for loc in rows:
        group = members[key(loc)]
        refs: dict[tuple[str, int], RecordRef] = {}
        for message_id, _, _ in group:
            for ref in links.get(message_id, ()):
                refs.setdefault((ref.module, ref.id), ref)
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
                folder_id=loc.folder_id,
                mailbox_id=loc.mailbox_id,
                thread_id=loc.thread_id,
                count=len(group),
                unread=any(not seen for _, seen, _ in group),
                flagged=any(flagged for _, _, flagged in group),
                stream=stream,
                records=sorted(refs.values(), key=_ref_order),
                sender_known=not message.from_address or message.from_address.lower() in known,
            )
        )
    return entries


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


def _visible_links(user: User, message_ids: Iterable[int]) -> dict[int, list[RecordRef]]:
    """{message id: the records it is linked to that ``user`` may view}."""
    pairs = set(
        Link.objects.filter(message_id__in=list(message_ids)).values_list(
            "message_id", "module", "record_id"
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
    for module, model in (("accounts", Account), ("deals", Deal)):
        if wanted.get(module):
            for pk, name in (
                access.visible(user, model).filter(pk__in=wanted[module]).values_list("pk", "name")
            ):
                names[(module, pk)] = name
    out: dict[int, list[RecordRef]] = defaultdict(list)
    for message_id, module, record_id in sorted(pairs):
        name = names.get((module, record_id))
        if name is not None:
            out[message_id].append(RecordRef(module, record_id, name))
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
