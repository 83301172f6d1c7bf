"""Response time (SPEC F17): how long crmail's users take to answer customers.

For each inbound message the viewer may see (``queries``' direction: not sent from crmail
or a dropbox, its From no user's nor a connected mailbox's), meeting the report's filters,
its **first reply**: the earliest outbound message the viewer may see whose In-Reply-To
names it, dated after it. The time between the two counts for the user who replied: the
sender from crmail, else the user whose address the reply is from. Per user: how many
messages they answered first, the median and the 90th percentile (nearest rank) of those
times. Messages never answered, or answered only in a message the viewer may not see,
count nowhere.

The Message-IDs replied to, then the inbound messages of those ids (a statement per
``CHUNK``), then their replies, each asking the visibility rules of the candidates only
(``visible_messages``: replies are few beside the mail); the pairing and the figures are
made in Python.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import OuterRef, Q, Subquery

from crmail.mailboxes.models import SentMessage
from crmail.mailboxes.replies import own_addresses_of
from crmail.people.models import User
from crmail.reports.queries import Filters, check, filtered_messages, internal_addresses, went_out
from crmail.sharing.visibility import visible_messages

COLUMNS = ["user", "label", "replied", "median_seconds", "p90_seconds"]
CHUNK = 5000  # Message-IDs asked for in one statement


@dataclass(frozen=True)
class ResponseRow:
    user_id: int
    label: str
    replied: int  # inbound messages this user answered first
    median: timedelta
    p90: timedelta


@dataclass
class ResponseTimes:
    filters: Filters
    rows: list[ResponseRow] = field(default_factory=list)
    name = "response-times"
    title = "Response time"

    @property
    def columns(self) -> list[str]:
        return list(COLUMNS)

    def table(self) -> list[list[Any]]:
        return [
            [
                str(r.user_id),
                r.label,
                r.replied,
                int(r.median.total_seconds()),
                int(r.p90.total_seconds()),
            ]
            for r in self.rows
        ]


def p90(values: list[timedelta]) -> timedelta:
    """The 90th percentile by nearest rank: the smallest value at least 90 % of the
    values do not exceed."""
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def median(values: list[timedelta]) -> timedelta:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def response_times(viewer: User, filters: Filters | None = None) -> ResponseTimes:
    filters = filters or Filters()
    check("user", filters)
    addresses = internal_addresses()
    outbound = Q(went_out("", addresses))
    sender = SentMessage.objects.filter(message_id=OuterRef("pk")).order_by("pk")
    replies = (
        visible_messages(viewer)  # the rules asked of each reply: few beside the mail
        .order_by()
        .filter(outbound)
        .exclude(in_reply_to="")
        .annotate(sent_by=Subquery(sender.values("sender_id")[:1]))
    )
    inbound = (
        filtered_messages(viewer, filters)
        .exclude(outbound)
        .exclude(message_id="")
        .filter(date__isnull=False)
    )
    # The messages replied to, named first (a planner cannot tell how few they are).
    named = sorted(set(replies.values_list("in_reply_to", flat=True)))
    asked: dict[str, datetime] = {}
    for start in range(0, len(named), CHUNK):
        chunk = inbound.filter(message_id__in=named[start : start + CHUNK])
        for message_id, date in chunk.values_list("message_id", "date"):
            if date is None:
                continue
            if message_id not in asked or date < asked[message_id]:
                asked[message_id] = date
    if not asked:
        return ResponseTimes(filters)
    answers = replies.filter(in_reply_to__in=list(asked), date__isnull=False).values_list(
        "in_reply_to", "date", "from_address", "sent_by"
    )
    owner_of = _owners_of_addresses()
    first: dict[str, tuple[datetime, int]] = {}
    for in_reply_to, date, from_address, sent_by in answers:
        who = sent_by or owner_of.get(from_address.lower())
        if who is None or date is None or date <= asked[in_reply_to]:
            continue
        if in_reply_to not in first or date < first[in_reply_to][0]:
            first[in_reply_to] = (date, who)
    times: dict[int, list[timedelta]] = defaultdict(list)
    for message_id, (date, who) in first.items():
        times[who].append(date - asked[message_id])
    users = User.objects.filter(pk__in=list(times))
    rows = [
        ResponseRow(
            u.pk, u.name or u.email, len(times[u.pk]), median(times[u.pk]), p90(times[u.pk])
        )
        for u in users
    ]
    rows.sort(key=lambda r: (r.median, r.label.lower()))
    return ResponseTimes(filters, rows)


def _owners_of_addresses() -> dict[str, int]:
    """Each address a user signs in with or sends as, lower case, and whose it is."""
    owners: dict[str, int] = {}
    ids = list(User.objects.order_by("pk").values_list("pk", flat=True))
    for pk, found in own_addresses_of(ids).items():
        for address in sorted(found):
            owners.setdefault(address, pk)
    return owners
