"""The home page's read side: what a salesperson's day starts with.

The user's own open tasks come first, overdue ones at the top (``crm.task_queries``),
each with its record's name when the user may open it.

Threads awaiting the user's reply come from the user's own mail only (their mailboxes, not
Trash or Junk, and what they sent from crmail), so a colleague's private answer neither
hides nor reveals anything. Deals whose contacts wrote recently count only mail the user may
see (``visibility``) on deals the user may view (``people.access``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from crmail.crm.models import Contact, Deal, EmailAddress, Lead, StageKind, Task
from crmail.crm.task_queries import is_overdue, open_tasks, record_names
from crmail.linking.models import Link, Module
from crmail.mail.models import Message
from crmail.mailboxes import inbox
from crmail.mailboxes.models import Location, SentMessage
from crmail.mailboxes.replies import own_addresses
from crmail.people import access
from crmail.people.models import User
from crmail.sharing.visibility import seen_of, visible_messages

LEFT_OUT_FOLDERS = ("trash", "junk")


@dataclass(frozen=True)
class TaskEntry:
    task: Task
    record_name: str | None  # None: a record the user may not open (or one gone)
    overdue: bool
    message_id: int | None  # the mail it came from, when the user may see it
    can_change: bool = True  # their own task: its owner ticks and edits it


@dataclass(frozen=True)
class OpenTasks:
    """The user's open tasks, overdue first then by due day: the first few, how many."""

    entries: list[TaskEntry]
    count: int


def my_open_tasks(user: User, *, today: date | None = None, limit: int = 10) -> OpenTasks:
    """A fixed number of queries: the tasks, their records' names, the mail they came from."""
    today = today or timezone.localdate()
    qs = open_tasks(user)
    shown = list(qs[:limit])
    count = len(shown) if len(shown) < limit else qs.count()
    names = record_names(user, {(t.module, t.record_id) for t in shown})
    seen = seen_of(user, (t.message_id for t in shown))
    entries = [
        TaskEntry(
            task=t,
            record_name=names.get((t.module, t.record_id)),
            overdue=is_overdue(t, today),
            message_id=t.message_id if t.message_id in seen else None,
        )
        for t in shown
    ]
    return OpenTasks(entries=entries, count=count)


@dataclass(frozen=True)
class Waiting:
    """Threads whose newest message (of the user's own mail) came in and was not answered."""

    messages: list[Message]
    count: int


@dataclass(frozen=True)
class Unread:
    """Unread conversations with leads and contacts in the user's Inbox folders, by stream
    (deals first); a few of each and how many in all."""

    entries: list[inbox.Entry]
    count: int


CUSTOMER_STREAMS = ("deals", "contacts", "leads")


def unread_customer_mail(user: User, *, limit: int = 8) -> Unread:
    entries: list[inbox.Entry] = []
    count = 0
    for stream in CUSTOMER_STREAMS:
        found = inbox.page(user, stream=stream, unread=True, limit=limit)
        count += found.count
        entries += found.items[: max(0, limit - len(entries))]
    return Unread(entries=entries, count=count)


@dataclass(frozen=True)
class DealNews:
    """An open deal whose contact wrote lately: the newest such message and how many."""

    deal: Deal
    message: Message
    count: int


def _own_mail(user: User) -> QuerySet[Message]:
    copies = Location.objects.filter(mailbox__owner_id=user.pk).exclude(
        folder__role__in=LEFT_OUT_FOLDERS
    )
    sent = SentMessage.objects.filter(sender_id=user.pk)
    return Message.objects.filter(
        Q(pk__in=copies.values("message_id")) | Q(pk__in=sent.values("message_id"))
    )


def _on_customer(user: User) -> Q:
    """A message linked to a lead or contact the user may view."""
    return Q(
        Exists(
            Link.objects.filter(
                message_id=OuterRef("pk"),
                module=Module.CONTACTS,
                record_id__in=access.visible(user, Contact).values("pk"),
            )
        )
    ) | Q(
        Exists(
            Link.objects.filter(
                message_id=OuterRef("pk"),
                module=Module.LEADS,
                record_id__in=access.visible(user, Lead).values("pk"),
            )
        )
    )


def awaiting_reply(
    user: User,
    *,
    now: datetime | None = None,
    older_than: timedelta = timedelta(days=1),
    within: timedelta = timedelta(days=30),
    limit: int = 10,
) -> Waiting:
    """Threads with a lead or contact whose newest message in the user's own mail is from
    someone else, older than ``older_than`` and younger than ``within``: the longest
    waiting first. Mailing-list and automated mail is left out."""
    now = now or timezone.now()
    own = _own_mail(user)
    newest_in_thread = (
        own.filter(thread_id=OuterRef("thread_id")).order_by("-date", "-pk").values("pk")[:1]
    )
    mine = sorted(own_addresses(user))
    rows = (
        own.filter(
            thread__isnull=False,
            automated=False,
            date__gte=now - within,
            date__lt=now - older_than,
        )
        .filter(pk=Subquery(newest_in_thread))
        .exclude(from_address__in=mine)
        .exclude(from_address="")
        .filter(_on_customer(user))
    )
    count = rows.count()
    messages = list(rows.order_by("date", "pk")[:limit]) if count else []
    return Waiting(messages=messages, count=count)


def deals_with_news(
    user: User,
    *,
    now: datetime | None = None,
    within: timedelta = timedelta(days=7),
    limit: int = 8,
) -> list[DealNews]:
    """Open deals the user may view whose contact wrote in the last ``within``, as far as
    the user may see that mail: the largest deals first."""
    now = now or timezone.now()
    since = now - within
    deals = (
        access.visible(user, Deal)
        .filter(stage__kind=StageKind.OPEN, contact__isnull=False)
        .filter(
            Exists(
                Link.objects.filter(
                    module=Module.CONTACTS, record_id=OuterRef("contact_id"), date__gte=since
                )
            )
        )
        .select_related("contact", "stage")
        .order_by("-amount", "closing_date", "pk")
    )
    news: list[DealNews] = []
    for deal in deals[: limit * 4]:
        theirs = EmailAddress.objects.filter(contact_id=deal.contact_id).values("address")
        wrote = visible_messages(user, Module.CONTACTS, deal.contact_id).filter(
            date__gte=since, from_address__in=theirs
        )
        newest = wrote.order_by("-date", "-pk").first()
        if newest is not None:
            news.append(DealNews(deal=deal, message=newest, count=wrote.count()))
            if len(news) == limit:
                break
    return news
