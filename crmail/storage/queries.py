"""The storage page's, the API's and ``crmail storage show``'s figures (SPEC F11): the
organisation's usage against its quota, each user's, the largest mailboxes, the growth."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count

from crmail.mail.models import WaitingBody
from crmail.mailboxes import quota, usage
from crmail.mailboxes.models import Mailbox
from crmail.people.models import User
from crmail.storage import history, thresholds
from crmail.storage.models import Alert

LARGEST = 10


@dataclass(frozen=True)
class UserRow:
    user: User
    messages: int
    bytes: int
    share: float  # per cent of the organisation's usage
    mailboxes: int
    grown: int  # bytes added over the last 30 days


@dataclass(frozen=True)
class MailboxRow:
    mailbox: Mailbox
    messages: int
    bytes: int


@dataclass
class Overview:
    quota: quota.Quota
    used: int
    percent: float
    level: int | None  # the highest warning raised, if any
    waiting: int  # messages whose body waits
    users: list[UserRow] = field(default_factory=list)
    largest: list[MailboxRow] = field(default_factory=list)
    growth: list[tuple[date, int]] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return self.quota.total <= self.used if self.quota.total else self.used > 0

    @property
    def free(self) -> int:
        return max(self.quota.total - self.used, 0)


def organisation() -> Overview:
    """The organisation's figures only (no lists)."""
    q = quota.current()
    used = usage.organisation_bytes()
    levels = list(Alert.objects.values_list("level", flat=True))
    return Overview(
        quota=q,
        used=used,
        percent=thresholds.percent(used, q.total),
        level=max(levels) if levels else None,
        waiting=WaitingBody.objects.count(),
    )


def users(only: User | None = None) -> list[UserRow]:
    """Each user's figures (``only``'s), the largest first, then by name."""
    figures = usage.by_user()
    grown = history.grown_since(30)
    total = sum(f.size for f in figures.values()) or 1
    people = User.objects.annotate(boxes=Count("mailboxes")).order_by("name", "email")
    if only is not None:
        people = people.filter(pk=only.pk)
    rows = []
    for person in people:
        figure = figures.get(person.pk, usage.Usage(0, 0))
        rows.append(
            UserRow(
                user=person,
                messages=figure.messages,
                bytes=figure.size,
                share=figure.size * 100 / total,
                mailboxes=person.boxes,
                grown=grown.get(person.pk, 0),
            )
        )
    rows.sort(key=lambda r: -r.bytes)
    return rows


def largest_mailboxes(limit: int = LARGEST, owner: User | None = None) -> list[MailboxRow]:
    """The mailboxes holding the most, largest first (``owner``'s only, when given)."""
    figures = usage.by_mailbox()
    boxes = Mailbox.objects.filter(pk__in=list(figures)).select_related("owner")
    if owner is not None:
        boxes = boxes.filter(owner=owner)
    rows = [MailboxRow(b, figures[b.pk].messages, figures[b.pk].size) for b in boxes]
    rows.sort(key=lambda r: (-r.bytes, r.mailbox.email))
    return rows[:limit]


def dashboard() -> Overview:
    """Everything the storage page shows."""
    overview = organisation()
    overview.users = users()
    overview.largest = largest_mailboxes()
    overview.growth = history.growth(90, now_bytes=overview.used)
    return overview
