"""The optional daily digest by mail: a user's unread customer-mail notifications of the
last day, sent once a day at ``CRMAIL_DIGEST_HOUR`` (crmail's time zone, default 7) through
their own connected mailbox to its own address (``mailboxes.sending``).

Nothing is sent when nothing is unread, or when the user has no active mailbox that can
send. Each user's day is claimed before sending (``last_sent_on``), so two workers never
send it twice; a sending failure gives the day back for the next run to try again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crmail.config import dates, env, words
from crmail.config.durable import claimed
from crmail.mail.compose import ComposeError, Draft
from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.sending import SendingNotPossible, send_message
from crmail.notifications.models import DigestSetting, Kind, Notification
from crmail.people.models import User

log = logging.getLogger(__name__)

WINDOW = timedelta(days=1)
LISTED = 50  # notifications listed in one digest; the rest are counted


def digest_hour() -> int:
    """The local hour the digests go out (``CRMAIL_DIGEST_HOUR``, 0-23, default 7)."""
    return min(env.whole_number("CRMAIL_DIGEST_HOUR", 7), 23)


@dataclass(frozen=True)
class Outcome:
    sent: int = 0
    nothing_unread: int = 0
    no_mailbox: int = 0
    failed: int = 0


def send_due(now: datetime | None = None) -> Outcome:
    """Send today's digest to every user who wants one and has not had it today, once the
    digest hour has come."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.hour < digest_hour():
        return Outcome()
    today = local.date()
    due = DigestSetting.objects.filter(daily_digest=True, user__is_active=True).filter(
        Q(last_sent_on__isnull=True) | Q(last_sent_on__lt=today)
    )
    sent = nothing = no_mailbox = failed = 0
    for setting in list(due.select_related("user")):
        if not _claim(setting, today):
            continue  # another worker has it
        result = send_one(setting.user, now)
        if result == "sent":
            sent += 1
        elif result == "nothing":
            nothing += 1
        elif result == "no_mailbox":
            no_mailbox += 1
        else:
            failed += 1
            DigestSetting.objects.filter(pk=setting.pk).update(last_sent_on=setting.last_sent_on)
    return Outcome(sent=sent, nothing_unread=nothing, no_mailbox=no_mailbox, failed=failed)


def _claim(setting: DigestSetting, today: date) -> bool:
    with transaction.atomic():
        updated = (
            DigestSetting.objects.filter(pk=setting.pk)
            .filter(Q(last_sent_on__isnull=True) | Q(last_sent_on__lt=today))
            .update(last_sent_on=today)
        )
    return claimed(updated)  # on disk before the mail goes (decision 078)


def unread_of_last_day(user: User, now: datetime) -> list[Notification]:
    return list(
        Notification.objects.filter(
            user=user,
            kind=Kind.CUSTOMER_MAIL,
            read_at__isnull=True,
            created_at__gte=now - WINDOW,
        ).order_by("-created_at", "-pk")
    )


def sending_mailbox(user: User) -> Mailbox | None:
    """The user's active mailbox when it has an outgoing server."""
    return Mailbox.objects.filter(owner=user, is_active=True).exclude(smtp_host="").first()


def compose(user: User, mailbox: Mailbox, rows: list[Notification]) -> Draft:
    """The digest as a plain-text message from the mailbox to itself."""
    lines = [
        f"Customer mail you have not read in crmail since {dates.when(rows[-1].created_at)}:",
        "",
    ]
    for row in rows[:LISTED]:
        lines.append(f"- {dates.when(row.created_at)} · {row.title}")
        if row.excerpt:
            lines.append(f"  {row.excerpt}")
    if len(rows) > LISTED:
        lines.append(f"… and {words.count(len(rows) - LISTED, 'more message')}.")
    lines += [
        "",
        "Open crmail and choose the bell at the top to read them. You can turn this daily "
        "mail off on your Account page.",
    ]
    return Draft(
        sender=mailbox.email,
        to=[mailbox.email],
        subject=f"crmail: {words.count(len(rows), 'unread message')} from customers",
        text="\n".join(lines) + "\n",
    )


def send_one(user: User, now: datetime) -> str:
    """Send ``user``'s digest now: "sent", "nothing", "no_mailbox" or "failed"."""
    rows = unread_of_last_day(user, now)
    if not rows:
        return "nothing"
    mailbox = sending_mailbox(user)
    if mailbox is None:
        log.info("digest: %s has no mailbox that can send; skipped", user.pk)
        return "no_mailbox"
    try:
        send_message(user, compose(user, mailbox, rows), mailbox=mailbox)
    except (SendingNotPossible, ComposeError, DriverError, OSError):
        log.warning("digest: sending %s's digest failed", user.pk, exc_info=True)
        return "failed"
    return "sent"
