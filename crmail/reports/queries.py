"""Email reports (SPEC F17): grouped counts of the mail a viewer may see.

Everything is counted through ``sharing.visibility``: the messages are
``visible_messages(viewer)``, narrowed by the filters, and the mailboxes that hold them
count only through the copies the viewer sees them by (``visible_copies_anywhere``), so a
report never counts what its viewer could not open, nor says who holds a message
privately. The visibility query is run once per report, inside the one grouping
statement; the grouping itself is SQL (decision 059).

Groups (``GROUPS``), each a message counted once per value it has:

- ``user``: the owners of the mailboxes holding a copy the viewer sees, and the user who
  sent it from crmail or through their BCC Dropbox: a message two users hold counts under
  both;
- ``source``: the protocol of those mailboxes (IMAP, POP3, Gmail API, Microsoft Graph),
  "Sent from crmail" and "BCC Dropbox" (``SentMessage.source``);
- ``month`` / ``week`` (starting Monday) / ``day``: of the message's date in the
  organisation's time zone (``TIME_ZONE``), every period between the first and the last
  shown, empty ones too;
- ``record_type``: the kinds of records it is linked to (leads, contacts, accounts,
  deals), records the viewer may view only;
- ``stage``: the stages of the deals it is linked to that the viewer may view;
- ``template``: the template mail sent from crmail was written from, among the templates
  the viewer may read;
- ``sentiment`` / ``intent``: what email intelligence found in the message (SPEC F15);
  mail without a result (BCC Dropbox mail, not analysed yet) is in no row of these.

The filters ``sentiment`` and ``intent`` count only mail email intelligence found so;
while its switch is off, these groups have no rows and these filters count nothing.

Each row has the messages' direction: outbound when crmail sent it (or received it at a
BCC Dropbox) or its From is the address of a crmail user or of a connected mailbox;
inbound otherwise. The totals count each message once.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.db.models.lookups import In

from crmail.config.bulk import values_sql
from crmail.crm.models import Deal, Stage
from crmail.emailtemplates.actions import readable
from crmail.emailtemplates.models import EmailTemplate
from crmail.insights.models import MessageInsight
from crmail.intelligence import queries as intelligence
from crmail.intelligence import switch as intelligence_switch
from crmail.intelligence.models import Result
from crmail.linking.models import Link, Module
from crmail.mail.models import Message
from crmail.mailboxes.models import Location, Mailbox, Protocol, SentMessage, Source
from crmail.mailboxes.sending import from_addresses
from crmail.people import access
from crmail.people.models import User
from crmail.sharing.visibility import (
    MODELS,
    VisibleRows,
    visible_copies_anywhere,
    visible_messages,
    visible_rows,
)

GROUPS: dict[str, str] = {
    "user": "User",
    "source": "Source",
    "month": "Month",
    "week": "Week",
    "day": "Day",
    "record_type": "Record type",
    "stage": "Deal stage",
    "template": "Template",
    "sentiment": "Sentiment",
    "intent": "Intent",
}
PERIODS = ("month", "week", "day")
SOURCES: dict[str, str] = {
    Protocol.IMAP: "IMAP",
    Protocol.POP3: "POP3",
    Protocol.GMAIL: "Gmail API",
    Protocol.GRAPH: "Microsoft Graph",
    Source.CRMAIL: "Sent from crmail",
    Source.DROPBOX: "BCC Dropbox",
}
RECORD_TYPES: dict[str, str] = {
    Module.LEADS: "Leads",
    Module.CONTACTS: "Contacts",
    Module.ACCOUNTS: "Accounts",
    Module.DEALS: "Deals",
}
COLUMNS = ("label", "inbound", "outbound", "count")
MAX_PERIODS = 5000  # days in a report by day: about 13 years


class BadReport(ValueError):
    """A report that cannot be made; ``field`` names the parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Filters:
    """Which messages a report counts: dated on or after ``after`` and before ``before``
    (days in the organisation's time zone), reaching crmail through ``source``."""

    after: date | None = None
    before: date | None = None
    source: str | None = None
    sentiment: str | None = None
    intent: str | None = None


@dataclass(frozen=True)
class Row:
    key: str  # what the API gives in the group's column: an id, a source, a period
    label: str  # what a person reads
    inbound: int
    outbound: int

    @property
    def count(self) -> int:
        return self.inbound + self.outbound


@dataclass
class Report:
    group_by: str
    filters: Filters
    rows: list[Row] = field(default_factory=list)
    inbound: int = 0  # each message once, whatever its groups
    outbound: int = 0

    @property
    def total(self) -> int:
        return self.inbound + self.outbound

    @property
    def columns(self) -> list[str]:
        return [self.group_by, *COLUMNS]

    @property
    def name(self) -> str:
        """For file names: ``email-report-by-month``."""
        return f"email-report-by-{self.group_by.replace('_', '-')}"

    @property
    def title(self) -> str:
        return f"By {GROUPS[self.group_by].lower()}"

    def table(self) -> list[list[Any]]:
        """The rows as the API, CSV and XLSX give them (``columns``)."""
        return [[r.key, r.label, r.inbound, r.outbound, r.count] for r in self.rows]


def check(group_by: str, filters: Filters) -> None:
    """Raise ``BadReport`` unless ``group_by`` and ``filters`` make a report."""
    if group_by not in GROUPS:
        raise BadReport(
            "group_by", f"Group by one of: {', '.join(GROUPS)} (not {group_by[:40]!r})."
        )
    if filters.source is not None and filters.source not in SOURCES:
        raise BadReport(
            "source", f"Choose a source among: {', '.join(SOURCES)} (not {filters.source[:40]!r})."
        )
    if filters.after and filters.before and filters.after >= filters.before:
        raise BadReport("before", "The end of the period must come after its start.")
    try:
        intelligence.check_sentiment(filters.sentiment)
        intelligence.check_intent(filters.intent)
    except intelligence.BadFilter as exc:
        raise BadReport(exc.field, str(exc)) from None


def email_report(viewer: User, group_by: str, filters: Filters | None = None) -> Report:
    """The messages ``viewer`` may see, meeting ``filters``, counted by ``group_by``."""
    filters = filters or Filters()
    check(group_by, filters)
    report = Report(group_by, filters)
    rows = visible_rows(viewer, _protocol(filters))
    counted = _counted_sql(viewer, rows, filters)
    (count, outbound), counts = _grouped(rows, counted, group_by, viewer)
    report.outbound, report.inbound = outbound, count - outbound
    report.rows = _ROWS[group_by](counts) if count else []
    return report


# --- the messages ----------------------------------------------------------------------


def zone() -> zoneinfo.ZoneInfo:
    """The organisation's time zone, in which periods and days are counted."""
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone())


def filtered_messages(viewer: User, filters: Filters) -> QuerySet[Message]:
    """The messages ``viewer`` may see that meet ``filters`` (unordered), for a query the
    caller narrows to a few candidates (replies, tracked mail): the rules are asked of each
    candidate (``visible_messages``), not of the viewer's whole mail (the counts of
    ``email_report`` read ``visible_rows``, which costs the same however few the
    candidates). A protocol as source: a copy the viewer sees the message through lies in
    a mailbox of that protocol; crmail or dropbox: it was sent or received so."""
    messages = visible_messages(viewer).order_by()
    if filters.source in Protocol.values:
        copies = Location.objects.filter(
            visible_copies_anywhere(viewer),
            mailbox__protocol=filters.source,
            message_id=OuterRef("pk"),
        )
        messages = messages.filter(Exists(copies))
    if filters.after:
        messages = messages.filter(date__gte=_start_of(filters.after))
    if filters.before:
        messages = messages.filter(date__lt=_start_of(filters.before))
    narrowing = _narrowing(viewer, filters)
    return messages if narrowing is None else messages.filter(pk__in=narrowing)


def _protocol(filters: Filters) -> str | None:
    return filters.source if filters.source in Protocol.values else None


def internal_addresses() -> list[str]:
    """The addresses of crmail's users and of their mailboxes, lower case (one list per
    organisation: a few hundred at most)."""
    found = {e.lower() for e in User.objects.values_list("email", flat=True) if e}
    for mailbox in Mailbox.objects.only("email", "extra_from_addresses"):
        found.update(from_addresses(mailbox))
    return sorted(found)


def went_out(path: str, addresses: list[str] | None = None) -> Any:
    """Whether the message at ``path`` (``""``: the row is the message; ``"message__"``)
    went out: sent from crmail or through a dropbox, or from one of ``addresses``."""
    addresses = internal_addresses() if addresses is None else addresses
    pk = f"{path}pk" if path else "pk"
    sent = Exists(SentMessage.objects.filter(message_id=OuterRef(pk)))
    if not addresses:
        return sent
    return sent | In(Lower(f"{path}from_address"), addresses)


# --- pairs: (key, message) per group, grouped in one statement ------------------------

# The messages counted, (id, outbound, date, class), worked out once per report
# (``_grouped``): the pairs name them by this table of the statement instead of asking
# visibility again.
COUNTED = "report_counted"
ASKED = "report_asked"  # those counted seen through no class: the pairs of ``THROUGH``
# What a message seen through its class counts under, for the groups that depend on
# how it is seen (``classes.Through``); the other groups read the message's own rows.
THROUGH = {
    "user": lambda t: t.users,
    "source": lambda t: t.sources,
    "record_type": lambda t: t.modules,
}


def _pairs(rows: QuerySet[Any], key: Any, message: str) -> QuerySet[Any]:
    return (
        rows.order_by()
        .annotate(report_key=key, report_message=F(message))
        .values_list("report_key", "report_message")
    )


def _in() -> RawSQL:
    """The counted messages' ids (``COUNTED``), for ``message_id__in``."""
    return RawSQL(f"SELECT {COUNTED}.id FROM {COUNTED}", ())  # noqa: S608, S611 (a constant)


def _in_asked() -> RawSQL:
    """The counted messages seen through no class (asked directly): the only ones whose
    pairs the groups of ``THROUGH`` read from the rows."""
    return RawSQL(f"SELECT {ASKED}.id FROM {ASKED}", ())  # noqa: S608, S611 (a constant)


def _seen_copies(rows: VisibleRows) -> QuerySet[Location]:
    """The copies the messages seen through no class are seen through (the custom path's
    read from the statement's ``visible_custom``)."""
    return Location.objects.filter(rows.seen_copies(), message_id__in=_in_asked())


def _by_user(viewer: User, rows: VisibleRows) -> list[QuerySet[Any]]:
    copies = _seen_copies(rows)
    sends = SentMessage.objects.filter(message_id__in=_in_asked())
    return [
        _pairs(copies, F("mailbox__owner_id"), "message_id"),
        _pairs(sends, F("sender_id"), "message_id"),
    ]


def _by_source(viewer: User, rows: VisibleRows) -> list[QuerySet[Any]]:
    copies = _seen_copies(rows)
    sends = SentMessage.objects.filter(message_id__in=_in_asked())
    return [
        _pairs(copies, F("mailbox__protocol"), "message_id"),
        _pairs(sends, F("source"), "message_id"),
    ]


def _by_period(kind: str) -> Any:
    def grouping(viewer: User, group_by: str, rows: VisibleRows) -> tuple[str, tuple[Any, ...]]:
        """The counted messages by the period of their date, in the organisation's time
        zone (``COUNTED``'s date: no message is read again). On SQLite by the hour of
        UTC (``_utc_bucket``), each given its period after (``_local_periods``):
        Django's truncation there is a Python function called per message (2.5 s for
        750,000)."""
        if connection.vendor == "sqlite":
            key, params = _utc_bucket("c.d"), []
        else:
            trunc: Any = connection.ops.datetime_trunc_sql  # (SQL, parameters); stub: str
            key, params = trunc(kind, "c.d", (), settings.TIME_ZONE)
        return (
            f"SELECT {key} AS k, SUM(1 - c.o) AS i, SUM(c.o) AS o"  # noqa: S608
            f" FROM {COUNTED} c GROUP BY 1"
        ), tuple(params)

    return grouping


ALIGNED_FROM, ALIGNED_UNTIL = datetime(1970, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)


BUCKETS = (3600, 900, 60, 1)  # seconds: the hour, quarter hour, minute, second of UTC


def _utc_bucket(column: str) -> str:
    """SQLite: a date column (UTC text) cut to the longest of ``BUCKETS`` that never
    straddles a local midnight of the organisation's zone (``_alignment``), outside
    ``ALIGNED_FROM`` to ``ALIGNED_UNTIL`` to the second."""
    size = _alignment(settings.TIME_ZONE)
    cut = {
        3600: f"substr({column}, 1, 13)",
        900: f"substr({column}, 1, 14)"
        f" || printf('%02d', CAST(substr({column}, 15, 2) AS INTEGER) / 15 * 15)",
        60: f"substr({column}, 1, 16)",
    }.get(size)
    if cut is None:
        return f"substr({column}, 1, 19)"
    start, end = (f"'{d:%Y-%m-%d}'" for d in (ALIGNED_FROM, ALIGNED_UNTIL))
    return (
        f"CASE WHEN {column} >= {start} AND {column} < {end} THEN {cut}"
        f" ELSE substr({column}, 1, 19) END"
    )


@functools.cache
def _alignment(name: str) -> int:
    """The longest of ``BUCKETS`` that, from 1970 to 2040, divides the zone's offset from
    UTC and every moment it changes (each change found to the second)."""
    tz = zoneinfo.ZoneInfo(name)

    def offset(at: datetime) -> timedelta:
        return at.astimezone(tz).utcoffset() or timedelta(0)

    seconds = {int(offset(ALIGNED_FROM).total_seconds())}
    day, before = ALIGNED_FROM, offset(ALIGNED_FROM)
    while day < ALIGNED_UNTIL:
        after = offset(day + timedelta(days=1))
        if after != before:
            low, high = 0, 86400  # seconds into the day: the change is in (low, high]
            while high - low > 1:
                middle = (low + high) // 2
                changed = offset(day + timedelta(seconds=middle)) == after
                low, high = (low, middle) if changed else (middle, high)
            seconds |= {high, int(after.total_seconds())}
        day, before = day + timedelta(days=1), after
    return next(size for size in BUCKETS if all(s % size == 0 for s in seconds))


def _local_periods(kind: str, groups: dict[Any, tuple[int, int]]) -> dict[Any, tuple[int, int]]:
    """Groups by ``_utc_bucket`` as groups by ``kind`` of the organisation's zone, keyed
    as Django's truncation on SQLite gives them."""
    tz = zone()
    found: dict[Any, tuple[int, int]] = {}
    for bucket, (inbound, outbound) in groups.items():
        if bucket is None:
            continue
        start = bucket if len(bucket) > 13 else f"{bucket}:00"  # an hour: HH:00
        day = datetime.fromisoformat(start).replace(tzinfo=UTC).astimezone(tz).date()
        if kind == "week":
            day -= timedelta(days=day.weekday())
        elif kind == "month":
            day = day.replace(day=1)
        key = f"{day.isoformat()} 00:00:00"
        i, o = found.get(key, (0, 0))
        found[key] = (i + inbound, o + outbound)
    return found


def _viewable_links(viewer: User, modules: Iterable[str], *, few: bool = False) -> Q:
    """Condition on ``Link`` rows: to a record of ``modules`` that ``viewer`` may view.
    ``few``: for the links of a few messages, each record looked up by its id (a set of
    every record in reach let PostgreSQL scan every link: 0.6 s at a million)."""
    found = Q(pk__in=[])
    for module in modules:
        model = MODELS[module]
        scope = access.record_scope(viewer, model, "view")
        if scope is None:
            continue
        records = model._default_manager.filter(scope)
        if few:
            found |= Q(Exists(records.filter(pk=OuterRef("record_id"))), module=module)
        else:
            found |= Q(module=module, record_id__in=records.values("pk"))
    return found


def _by_record_type(viewer: User, rows: VisibleRows) -> list[QuerySet[Any]]:
    viewable = _viewable_links(viewer, MODELS, few=True)  # the messages seen through no class
    links = Link.objects.filter(viewable, message_id__in=_in_asked())
    return [_pairs(links, F("module"), "message_id")]


def _by_stage(viewer: User, rows: VisibleRows) -> list[QuerySet[Any]]:
    # Every counted message's links: PostgreSQL wants the set of deals in reach, SQLite
    # a lookup per link (with the set it looked every deal up for every message: 2.7 s).
    few = connection.vendor == "sqlite"
    links = Link.objects.filter(
        _viewable_links(viewer, [Module.DEALS], few=few), message_id__in=_in()
    )
    stage = Subquery(Deal.objects.filter(pk=OuterRef("record_id")).values("stage_id")[:1])
    return [_pairs(links, stage, "message_id")]


def _by_template(viewer: User, rows: VisibleRows) -> list[QuerySet[Any]]:
    insights = MessageInsight.objects.filter(
        template_id__in=readable(viewer).values("pk"), sent__message_id__in=_in()
    )
    return [_pairs(insights, F("template_id"), "sent__message_id")]


def _by_result(column: str) -> Any:
    def grouping(viewer: User, group_by: str, rows: VisibleRows) -> tuple[str, tuple[Any, ...]]:
        """The counted messages by what email intelligence found (a message has one
        result at most: joined, not paired), none while it is switched off (no result
        is shown then)."""
        if not intelligence_switch.enabled():
            return "SELECT NULL AS k, NULL AS i, NULL AS o", ()
        q = connection.ops.quote_name
        key = q(column)  # a field named as its column
        return (
            f"SELECT r.{key} AS k, SUM(1 - c.o) AS i, SUM(c.o) AS o FROM {COUNTED} c"  # noqa: S608
            f" JOIN {q(Result._meta.db_table)} r ON r.message_id = c.id GROUP BY r.{key}"
        ), ()

    return grouping


_PAIRS = {
    "user": _by_user,
    "source": _by_source,
    "record_type": _by_record_type,
    "stage": _by_stage,
    "template": _by_template,
}
# The groups counted from ``COUNTED`` (and one row per message) alone (the others:
# ``_paired``).
_GROUPINGS = {
    "month": _by_period("month"),
    "week": _by_period("week"),
    "day": _by_period("day"),
    "sentiment": _by_result("sentiment"),
    "intent": _by_result("intent"),
}


def _counted_sql(
    viewer: User, rows: VisibleRows, filters: Filters
) -> tuple[str, tuple[Any, ...]] | None:
    """The statement of ``COUNTED``: of the messages the viewer may see (``rows``), those
    meeting ``filters`` (but the source as a protocol, which ``rows`` met), with their
    direction (``went_out``, read off the rows), date and class; None when nothing can
    meet them. ``rows`` is read in
    place, so that the database takes the dates into each of its parts; its ``body``,
    for ``_grouped`` defines ``visible_custom`` once for the whole statement."""
    addresses = internal_addresses()
    outbound = "r.sent"
    params: tuple[Any, ...] = rows.params
    address_params: tuple[Any, ...] = ()
    if addresses:
        in_addresses, address_params = values_sql(addresses)
        outbound = f"r.sent OR r.from_address {in_addresses}"
    where = []
    for day, op in ((filters.after, ">="), (filters.before, "<")):
        if day:
            where.append(f"r.date {op} %s")
            params = (*params, connection.ops.adapt_datetimefield_value(_start_of(day)))
    try:
        narrowing = _narrowing(viewer, filters)
        if narrowing is not None:
            sql, narrowing_params = narrowing.query.sql_with_params()
            where.append(f"r.message_id IN ({sql})")
            params = (*params, *narrowing_params)
    except EmptyResultSet:  # sentiment or intent asked with email intelligence off
        return None
    return (
        f"SELECT r.message_id, CASE WHEN {outbound} THEN 1 ELSE 0 END, r.date,"  # noqa: S608
        f" r.visibility_class_id FROM ({rows.body}) r"
        f"{' WHERE ' + ' AND '.join(where) if where else ''}"
    ), (*address_params, *params)


def _narrowing(viewer: User, filters: Filters) -> QuerySet[Any] | None:
    """The messages meeting the filters that visibility does not decide (a source that is
    no protocol, a sentiment, an intent), as ids, or None for no such filter."""
    found: QuerySet[Any] | None = None
    if filters.source and filters.source not in Protocol.values:
        found = SentMessage.objects.filter(source=filters.source).values("message_id")
    if filters.sentiment or filters.intent:
        results = intelligence.meeting(filters.sentiment, filters.intent)
        found = results if found is None else results.filter(message_id__in=found)
    return found


def _grouped(
    rows: VisibleRows, counted: tuple[str, tuple[Any, ...]] | None, group_by: str, viewer: User
) -> tuple[tuple[int, int], dict[Any, tuple[int, int]]]:
    """(messages, outbound) counted, and per key of ``group_by`` (inbound, outbound)
    messages, each (key, message) pair once — one statement: the messages the viewer may
    see (``rows``, visibility asked once) that meet the filters (``counted``) kept as
    ``COUNTED`` with their direction, date and class, the group's pairs joined to it and
    grouped, the totals beside each row; for the groups of ``THROUGH``, the messages seen
    through a class counted per class and direction, in the same statement, and given to
    each key the class is seen through (decision 063)."""
    if counted is None:
        return (0, 0), {}
    counted_sql, counted_params = counted
    grouping, grouping_params = _GROUPINGS.get(group_by, _paired)(viewer, group_by, rows)
    by_class = ""
    if group_by in THROUGH:
        by_class = (
            " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, c.c, c.o, COUNT(*)"  # noqa: S608
            f" FROM {COUNTED} c WHERE c.c IS NOT NULL GROUP BY c.c, c.o"
        )
    custom = f"visible_custom AS ({rows.custom}), " if rows.custom else ""
    sql = (
        f"WITH {custom}{COUNTED}(id, o, d, c) AS MATERIALIZED ({counted_sql}),"  # noqa: S608
        f" {ASKED}(id, o) AS MATERIALIZED (SELECT id, o FROM {COUNTED} WHERE c IS NULL)"
        f" SELECT t.n, t.outbound, g.k, g.i, g.o, NULL, NULL, NULL"
        f" FROM (SELECT COUNT(*) AS n, COALESCE(SUM(o), 0) AS outbound FROM {COUNTED}) t"
        f" LEFT JOIN ({grouping}) g ON 1 = 1{by_class}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*counted_params, *grouping_params))
        found = cursor.fetchall()
    first = next((row for row in found if row[5] is None), None)
    totals = (int(first[0]), int(first[1])) if first else (0, 0)
    groups: dict[Any, tuple[int, int]] = {
        key: (int(i), int(o))
        for _, _, key, i, o, cls, _, _ in found
        if cls is None and i is not None
    }
    for *_, cls, outbound, n in found:
        if cls is None:
            continue
        for key in THROUGH[group_by](rows.through[cls]):
            i, o = groups.get(key, (0, 0))
            groups[key] = (i, o + n) if outbound else (i + n, o)
    if group_by in PERIODS and connection.vendor == "sqlite":
        groups = _local_periods(group_by, groups)
    return totals, groups


def _paired(viewer: User, group_by: str, rows: VisibleRows) -> tuple[str, tuple[Any, ...]]:
    """The grouping of a group made of (key, message) pairs (``_PAIRS``): each pair once,
    joined to the counted messages for their direction (those seen through no class, for
    the groups of ``THROUGH``: the others are counted by class), counted per key."""
    counted = ASKED if group_by in THROUGH else COUNTED
    pairs = _PAIRS[group_by](viewer, rows)
    union = pairs[0] if len(pairs) == 1 else pairs[0].union(*pairs[1:])
    try:
        pairs_sql, pairs_params = union.query.sql_with_params()
    except EmptyResultSet:  # no group the viewer may see (no record they may view)
        return "SELECT NULL AS k, NULL AS i, NULL AS o", ()
    return (
        "SELECT u.k AS k, SUM(1 - u.o) AS i, SUM(u.o) AS o FROM"  # noqa: S608
        " (SELECT DISTINCT p.report_key AS k, p.report_message AS m, c.o"
        f" FROM ({pairs_sql}) p JOIN {counted} c ON c.id = p.report_message) u"
        " GROUP BY u.k"
    ), tuple(pairs_params)


# --- rows, labelled ------------------------------------------------------------------------


def _ordered(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (-r.count, r.label.lower(), r.key))


def _user_rows(counts: dict[Any, tuple[int, int]]) -> list[Row]:
    users = User.objects.filter(pk__in=[k for k in counts if k is not None])
    names = {u.pk: u.name or u.email for u in users}
    return _ordered([Row(str(pk), names[pk], *counts[pk]) for pk in names])


def _source_rows(counts: dict[Any, tuple[int, int]]) -> list[Row]:
    return [Row(key, label, *counts[key]) for key, label in SOURCES.items() if key in counts]


def _record_type_rows(counts: dict[Any, tuple[int, int]]) -> list[Row]:
    return [Row(key, label, *counts[key]) for key, label in RECORD_TYPES.items() if key in counts]


def _stage_rows(counts: dict[Any, tuple[int, int]]) -> list[Row]:
    stages = Stage.objects.filter(pk__in=[k for k in counts if k is not None]).select_related(
        "pipeline"
    )
    return [
        Row(str(s.pk), f"{s.pipeline.name}: {s.name}", *counts[s.pk])
        for s in stages.order_by("pipeline__name", "position", "pk")
    ]


def _template_rows(counts: dict[Any, tuple[int, int]]) -> list[Row]:
    templates = EmailTemplate.objects.filter(pk__in=[k for k in counts if k is not None])
    return _ordered([Row(str(t.pk), t.name, *counts[t.pk]) for t in templates])


def _choice_rows(labels: dict[str, str], counts: dict[Any, tuple[int, int]]) -> list[Row]:
    return [Row(key, label, *counts[key]) for key, label in labels.items() if key in counts]


def _as_day(value: Any) -> date:
    """A truncated date as the database gives it (a string on SQLite, a datetime or a
    date on PostgreSQL)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.date() if isinstance(value, datetime) else value


def _next(day: date, group_by: str) -> date:
    if group_by == "day":
        return day + timedelta(days=1)
    if group_by == "week":
        return day + timedelta(days=7)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _period_label(day: date, group_by: str) -> tuple[str, str]:
    if group_by == "month":
        return day.strftime("%Y-%m"), day.strftime("%B %Y")
    if group_by == "week":
        return day.isoformat(), f"Week of {day.isoformat()}"
    return day.isoformat(), day.isoformat()


def period_rows(group_by: str, counts: dict[Any, Any], empty: Any) -> list[tuple[str, str, Any]]:
    """(key, label, figures) for every period from the first to the last of ``counts``
    (truncated dates as the database gives them), ``empty`` for those without figures."""
    by_day = {_as_day(k): v for k, v in counts.items() if k is not None}
    if not by_day:
        return []
    found: list[tuple[str, str, Any]] = []
    day, last = min(by_day), max(by_day)
    while day <= last and len(found) < MAX_PERIODS:
        key, label = _period_label(day, group_by)
        found.append((key, label, by_day.get(day, empty)))
        day = _next(day, group_by)
    return found


def _period_rows(group_by: str) -> Any:
    def rows(counts: dict[Any, tuple[int, int]]) -> list[Row]:
        return [
            Row(key, label, *figures)
            for key, label, figures in period_rows(group_by, counts, (0, 0))
        ]

    return rows


_ROWS = {
    "user": _user_rows,
    "source": _source_rows,
    "month": _period_rows("month"),
    "week": _period_rows("week"),
    "day": _period_rows("day"),
    "record_type": _record_type_rows,
    "stage": _stage_rows,
    "template": _template_rows,
    "sentiment": lambda counts: _choice_rows(intelligence.SENTIMENTS, counts),
    "intent": lambda counts: _choice_rows(intelligence.INTENTS, counts),
}
