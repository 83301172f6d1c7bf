"""Email insights' read side (SPEC F9, decision 057): a sent message's opens and clicks,
summaries for lists of mail, templates' rates, and a contact's hour-of-week profile.

Who sees what: a message's opens and clicks are shown with the message, to whoever may
see it (``sharing.visibility``: mail sent from crmail is seen by everyone who may see its
records); a template's rates and a contact's profile count only the mail the viewer may
see. Hits marked as scanners are listed (marked) and left out of every figure.
"""

from __future__ import annotations

import math
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Max

from crmail.crm.models import Contact, Deal, Record
from crmail.insights.models import Click, MessageInsight, Open
from crmail.mail.models import Message, Participant
from crmail.mailboxes.models import SentMessage, Source
from crmail.people import access
from crmail.people.models import User
from crmail.sharing.visibility import seen_of

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MIN_EVENTS = 3  # opens and replies before crmail names a best time
LEVELS = 4  # shades of the heatmap above "none"
LEAD = timedelta(minutes=15)  # "send at the best time" is at least this far ahead
RECIPIENT_ROLES = ("to", "cc")


# -- one message, and lists of messages -------------------------------------------------


@dataclass
class MessageInsights:
    """A tracked message's opens and clicks, oldest first, the marked ones included."""

    sent: SentMessage
    opens: list[Open]
    clicks: list[Click]

    @property
    def counted_opens(self) -> list[Open]:
        return [o for o in self.opens if not o.scanner]

    @property
    def counted_clicks(self) -> list[Click]:
        return [c for c in self.clicks if not c.scanner]

    @property
    def hits(self) -> list[Open | Click]:
        """Opens and clicks together, oldest first."""
        return sorted([*self.opens, *self.clicks], key=lambda hit: (hit.at, hit.pk))


def for_message(message_id: int) -> MessageInsights | None:
    """The opens and clicks of a message sent from crmail with tracking; None for any
    other message. The caller has checked that the viewer may see the message."""
    sent = (
        SentMessage.objects.filter(
            message_id=message_id, source=Source.CRMAIL, insight__tracked=True
        )
        .order_by("sent_at", "pk")
        .first()
    )
    if sent is None:
        return None
    return MessageInsights(
        sent, list(Open.objects.filter(sent=sent)), list(Click.objects.filter(sent=sent))
    )


@dataclass
class Summary:
    """A line's worth of a tracked message's figures (scanners left out)."""

    opens: int = 0
    clicks: int = 0
    marked: int = 0  # opens and clicks probably by scanners
    last_open: datetime | None = None

    @property
    def words(self) -> str:
        if self.opens:
            text = f"Opened {_times(self.opens)}"
        elif self.marked:
            text = "Opened (probably by a scanner)"
        else:
            text = "Not opened yet"
        if self.clicks:
            text += f" · {self.clicks} click{'s' if self.clicks != 1 else ''}"
        return text


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def summaries(message_ids: Iterable[int]) -> dict[int, Summary]:
    """Per message id, the figures of those sent from crmail with tracking (three queries)."""
    sends = dict(
        SentMessage.objects.filter(
            message_id__in=set(message_ids), source=Source.CRMAIL, insight__tracked=True
        ).values_list("pk", "message_id")
    )
    found = {message_id: Summary() for message_id in sends.values()}
    for model, attribute in ((Open, "opens"), (Click, "clicks")):
        rows = (
            model.objects.filter(sent_id__in=sends)
            .values("sent_id", "scanner")
            .annotate(n=Count("pk"), last=Max("at"))
            .order_by()
        )
        for row in rows:
            summary = found[sends[row["sent_id"]]]
            if row["scanner"]:
                summary.marked += row["n"]
                continue
            setattr(summary, attribute, getattr(summary, attribute) + row["n"])
            if model is Open:
                summary.last_open = max(filter(None, [summary.last_open, row["last"]]))
    return found


# -- templates ---------------------------------------------------------------------------


@dataclass
class Rates:
    """A template's figures over the mail written from it that the viewer may see."""

    sent: int = 0
    tracked: int = 0  # of those sent, how many carried the pixel and tracked links
    opened: int = 0  # of the tracked, opened by a person (not only by scanners)
    clicked: int = 0
    replied: int = 0  # of all sent

    @staticmethod
    def percent(part: int, whole: int) -> int | None:
        return round(100 * part / whole) if whole else None

    @property
    def open_rate(self) -> int | None:
        return self.percent(self.opened, self.tracked)

    @property
    def click_rate(self) -> int | None:
        return self.percent(self.clicked, self.tracked)

    @property
    def reply_rate(self) -> int | None:
        return self.percent(self.replied, self.sent)


def template_rates(viewer: User, template_ids: Iterable[int]) -> dict[int, Rates]:
    """Per template, sent / opened / clicked / replied over the mail the viewer may see."""
    rows = list(
        MessageInsight.objects.filter(template_id__in=set(template_ids)).values(
            "template_id", "tracked", "sent_id", "sent__message_id", "sent__sent_at"
        )
    )
    visible = seen_of(viewer, (r["sent__message_id"] for r in rows))
    rows = [r for r in rows if r["sent__message_id"] in visible]
    sent_ids = [r["sent_id"] for r in rows]
    opened = _hit_sends(Open, sent_ids)
    clicked = _hit_sends(Click, sent_ids)
    answered = replied(viewer, [(r["sent__message_id"], r["sent__sent_at"]) for r in rows])
    found: dict[int, Rates] = defaultdict(Rates)
    for r in rows:
        rates = found[r["template_id"]]
        rates.sent += 1
        rates.replied += r["sent__message_id"] in answered
        if r["tracked"]:
            rates.tracked += 1
            rates.opened += r["sent_id"] in opened
            rates.clicked += r["sent_id"] in clicked
    return dict(found)


def _hit_sends(model: type[Open] | type[Click], sent_ids: list[int]) -> set[int]:
    return set(
        model.objects.filter(sent_id__in=sent_ids, scanner=False)
        .values_list("sent_id", flat=True)
        .distinct()
    )


def replied(viewer: User, sends: list[tuple[int, datetime]]) -> set[int]:
    """Of these (message id, sent at), the messages answered: a later message in the same
    thread From one of its To or Cc recipients, that the viewer may see (four queries)."""
    message_ids = [m for m, _ in sends]
    threads = dict(
        Message.objects.filter(pk__in=message_ids, thread__isnull=False).values_list(
            "pk", "thread_id"
        )
    )
    if not threads:
        return set()
    recipients: dict[int, set[str]] = defaultdict(set)
    for message_id, address in Participant.objects.filter(
        message_id__in=threads, role__in=RECIPIENT_ROLES
    ).values_list("message_id", "address"):
        recipients[message_id].add(address.lower())
    candidates = list(
        Message.objects.filter(thread_id__in=set(threads.values()))
        .exclude(pk__in=message_ids)
        .values_list("pk", "thread_id", "from_address", "date")
    )
    visible = seen_of(viewer, (c[0] for c in candidates))
    by_thread: dict[int, list[tuple[str, datetime | None]]] = defaultdict(list)
    for pk, thread_id, sender, date in candidates:
        if pk in visible:
            by_thread[thread_id].append((sender.lower(), date))
    answered = set()
    for message_id, sent_at in sends:
        for sender, date in by_thread.get(threads.get(message_id, 0), []):
            if sender in recipients[message_id] and date is not None and date > sent_at:
                answered.add(message_id)
                break
    return answered


# -- a contact's best time ---------------------------------------------------------------


@dataclass
class Heatmap:
    """A contact's opens (by people) and replies by hour of the week, in ``zone``."""

    zone: zoneinfo.ZoneInfo
    own_zone: bool  # the contact's own time zone (else the organisation's)
    counts: list[list[int]] = field(default_factory=lambda: [[0] * 24 for _ in range(7)])
    opens: int = 0
    replies: int = 0

    @property
    def total(self) -> int:
        return self.opens + self.replies

    @property
    def best(self) -> tuple[int, int] | None:
        """(weekday, hour) with the most activity, its neighbouring hours breaking ties;
        None until ``MIN_EVENTS``."""
        if self.total < MIN_EVENTS:
            return None

        def score(slot: tuple[int, int]) -> tuple[int, int, int, int]:
            day, hour = slot
            row = self.counts[day]
            near = (row[hour - 1] if hour else 0) + (row[hour + 1] if hour < 23 else 0)
            return (row[hour], near, -day, -hour)

        return max(((d, h) for d in range(7) for h in range(24)), key=score)

    @property
    def best_words(self) -> str:
        best = self.best
        if best is None:
            return (
                f"crmail knows no best time yet: it needs at least {MIN_EVENTS} opens or "
                f"replies, and has {self.total}."
            )
        day, hour = best
        return f"{DAYS[day]}s, {hour:02d}:00 to {(hour + 1) % 24:02d}:00 ({self.zone.key})"

    def rows(self) -> list[tuple[str, list[tuple[int, int, int, bool]]]]:
        """For drawing: per day, its name and (hour, count, level, whether it is the best
        hour) for each hour. The best hour and the busiest cell are worked out once: asked
        cell by cell, drawing a contact with activity took about 40 ms."""
        best = self.best
        most = max(max(row) for row in self.counts)
        return [
            (
                DAYS[d],
                [(h, count, _shade(count, most), (d, h) == best) for h, count in enumerate(row)],
            )
            for d, row in enumerate(self.counts)
        ]


def _shade(count: int, most: int) -> int:
    """0 (nothing) to ``LEVELS``: the shade of a cell of ``count`` where the busiest has
    ``most``."""
    return math.ceil(LEVELS * count / most) if count else 0


def contact_for(user: User, record: Record | None, to: list[str]) -> Contact | None:
    """The contact "send at the best time" is for: the record's (a contact, a deal's
    contact), else the first To address that is a contact ``user`` may see."""
    contacts = access.visible(user, Contact)
    if isinstance(record, Contact):
        return record
    if isinstance(record, Deal) and record.contact_id:
        found = contacts.filter(pk=record.contact_id).first()
        if found is not None:
            return found
    for address in to:
        found = contacts.filter(emails__address=address.strip().lower()).first()
        if found is not None:
            return found
    return None


def contact_zone(contact: Contact) -> tuple[zoneinfo.ZoneInfo, bool]:
    """The contact's time zone when known (and valid), else the organisation's."""
    if contact.time_zone:
        try:
            return zoneinfo.ZoneInfo(contact.time_zone), True
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return zoneinfo.ZoneInfo(settings.TIME_ZONE), False


def heatmap(viewer: User, contact: Contact) -> Heatmap:
    """The contact's activity the viewer may see: people's opens of mail sent from crmail
    to them (To or Cc), and their replies (mail from them answering another)."""
    zone, own = contact_zone(contact)
    found = Heatmap(zone, own)
    addresses = [a.lower() for a in contact.emails.values_list("address", flat=True)]
    if not addresses:
        return found
    to_them = Participant.objects.filter(address__in=addresses, role__in=RECIPIENT_ROLES)
    opens = list(
        Open.objects.filter(
            scanner=False, sent__message_id__in=to_them.values("message_id")
        ).values_list("at", "sent__message_id")
    )
    replies = list(
        Message.objects.filter(from_address__in=addresses, date__isnull=False)
        .exclude(in_reply_to="")
        .values_list("date", "pk")
    )
    visible = seen_of(viewer, [m for _, m in opens] + [m for _, m in replies])
    for events, attribute in ((opens, "opens"), (replies, "replies")):
        for at, message_id in events:
            if at is None or message_id not in visible:
                continue
            local = at.astimezone(zone)
            found.counts[local.weekday()][local.hour] += 1
            setattr(found, attribute, getattr(found, attribute) + 1)
    return found


def next_slot(best: tuple[int, int], zone: zoneinfo.ZoneInfo, after: datetime) -> datetime:
    """The next start of hour ``best`` (weekday, hour) in ``zone``, at least ``LEAD`` after
    ``after``."""
    day, hour = best
    local = (after + LEAD).astimezone(zone)
    date = local.date() + timedelta(days=(day - local.weekday()) % 7)
    at = datetime.combine(date, time(hour), tzinfo=zone)
    if at < after + LEAD:
        at = datetime.combine(date + timedelta(days=7), time(hour), tzinfo=zone)
    return at
