"""Mail sent later (SPEC F9: "send later", "send at the best time"; decision 057).

A scheduled message lives in the database (``ScheduledSend``, its files beside it) until
its time, so a restart of any process loses nothing. A job queued for its time and the
minute's sweep (``tasks``) both call ``send_scheduled``, which first *claims* the row —
one conditional UPDATE from scheduled to sending — so only one of them sends it, and
``Tracker.record`` marks it sent in the very transaction that stores the sent message.
Cancelling is the same kind of UPDATE from scheduled to cancelled: it wins or loses
against the claim, never both. A row left "sending" by a process that died mid-send
(its claim lapsed) is not sent again: crmail cannot know whether the server took it, so
it is marked not sent, saying so, rather than risk sending it twice.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from crmail.config.dates import when
from crmail.config.durable import claimed
from crmail.insights import switch
from crmail.insights.models import ScheduledAttachment, ScheduledSend, ScheduledState
from crmail.insights.tracking import Tracker
from crmail.linking.links import link_answer
from crmail.mail.compose import ComposeError, Draft, build_message
from crmail.mail.models import Message
from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.models import Mailbox, SentMessage
from crmail.mailboxes.sending import SendingNotPossible, send_message
from crmail.people.models import User

log = logging.getLogger(__name__)
CLAIM = timedelta(minutes=10)  # longer than any one send
FURTHEST = timedelta(days=366)
BATCH = 100
DRAFT_FIELDS = (
    "sender",
    "sender_name",
    "to",
    "cc",
    "bcc",
    "reply_to",
    "subject",
    "text",
    "html",
    "in_reply_to",
    "references",
)
LISTS = ("to", "cc", "bcc", "references")
INTERRUPTED = (
    "crmail stopped while sending this email, so it may or may not have gone out: look in "
    "your Sent folder, and send it again if it is not there."
)


class ScheduleError(ValueError):
    """The message cannot be scheduled; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotCancellable(Exception):
    """Too late: it is being sent, was sent, or was cancelled already (said in words)."""


def schedule(
    user: User,
    draft: Draft,
    *,
    send_at: datetime,
    mailbox: Mailbox | None = None,
    record_module: str = "",
    record_id: int | None = None,
    answers: Message | None = None,
    track: bool = True,
    template_id: int | None = None,
    best_time_of: str = "",
    now: datetime | None = None,
) -> ScheduledSend:
    """Keep ``draft`` to send as ``user`` at ``send_at``. Its headers are checked now
    (``ComposeError``); what only sending can tell (the server) is told when it is sent."""
    now = now or timezone.now()
    if send_at <= now:
        raise ScheduleError("send_at", "Choose a time in the future to send it later.")
    if send_at > now + FURTHEST:
        raise ScheduleError("send_at", "Choose a time within a year.")
    build_message(draft)  # refuses what sending would refuse in the headers
    values = asdict(draft)
    values.pop("attachments")
    values = {k: list(v) if isinstance(v, tuple | list) else v for k, v in values.items()}
    with transaction.atomic():
        row = ScheduledSend.objects.create(
            user=user,
            mailbox=mailbox,
            send_at=send_at,
            draft=values,
            subject=draft.subject,
            recipients=[*draft.to, *draft.cc, *draft.bcc],
            record_module=record_module,
            record_id=record_id,
            answers=answers,
            track=track,
            template_id=template_id,
            best_time_of=best_time_of,
        )
        ScheduledAttachment.objects.bulk_create(
            ScheduledAttachment(
                scheduled=row, position=i, name=name[:255], content_type=kind[:200], data=data
            )
            for i, (name, kind, data) in enumerate(draft.attachments)
        )
        transaction.on_commit(lambda: _queue(row.pk, send_at))
    return row


def _queue(pk: int, at: datetime) -> None:
    from crmail.insights import tasks  # the jobs import this module

    tasks.send_at_its_time(pk, at)


def cancel(user: User, pk: int, *, now: datetime | None = None) -> ScheduledSend:
    """Cancel ``user``'s scheduled message ``pk`` while it waits (``ScheduledSend.DoesNotExist``
    for another's or none; ``NotCancellable`` once it is being sent)."""
    row = ScheduledSend.objects.get(pk=pk, user=user)
    done = ScheduledSend.objects.filter(pk=pk, state=ScheduledState.SCHEDULED).update(
        state=ScheduledState.CANCELLED, finished_at=now or timezone.now()
    )
    row.refresh_from_db()
    if not done:
        words: dict[str, str] = {
            ScheduledState.SENDING: "It is being sent right now: too late to cancel it.",
            ScheduledState.SENT: "It was sent already.",
            ScheduledState.CANCELLED: "It was cancelled already.",
        }
        raise NotCancellable(words.get(row.state, "It was not sent, and is not waiting any more."))
    ScheduledAttachment.objects.filter(scheduled_id=pk).delete()
    return row


def due_ids(now: datetime | None = None, limit: int = BATCH) -> list[int]:
    now = now or timezone.now()
    return list(
        ScheduledSend.objects.filter(state=ScheduledState.SCHEDULED, send_at__lte=now)
        .order_by("send_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def abandon_interrupted(now: datetime | None = None) -> int:
    """Rows a dead process left "sending": marked not sent, in words (never sent again)."""
    now = now or timezone.now()
    return ScheduledSend.objects.filter(state=ScheduledState.SENDING, claimed_until__lt=now).update(
        state=ScheduledState.FAILED, error=INTERRUPTED, finished_at=now
    )


def send_scheduled(pk: int, *, now: datetime | None = None) -> str:
    """Send scheduled message ``pk`` if it is due and nobody else is sending it; its state
    afterwards (unchanged when it was not this call's to send)."""
    now = now or timezone.now()
    ours = claimed(  # on disk before the message goes (decision 078)
        ScheduledSend.objects.filter(
            pk=pk, state=ScheduledState.SCHEDULED, send_at__lte=now
        ).update(state=ScheduledState.SENDING, claimed_until=now + CLAIM)
    )
    row = ScheduledSend.objects.select_related("user", "mailbox", "answers").filter(pk=pk).first()
    if row is None or not ours:
        return row.state if row is not None else ""
    files = [(a.name, a.content_type, bytes(a.data)) for a in row.attachments.all()]
    values = {k: row.draft.get(k, [] if k in LISTS else "") for k in DRAFT_FIELDS}
    draft = Draft(**values, attachments=files)

    def mark_sent(sent: SentMessage) -> None:
        ScheduledSend.objects.filter(pk=pk).update(
            state=ScheduledState.SENT, sent=sent, finished_at=timezone.now(), claimed_until=None
        )

    tracker = Tracker(
        track=row.track and switch.state().tracking,
        template_id=row.template_id,
        after=mark_sent,
    )
    try:
        sent = send_message(
            row.user,
            draft,
            mailbox=row.mailbox,
            record_module=row.record_module,
            record_id=row.record_id,
            tracking=tracker,
        )
    except (ComposeError, SendingNotPossible) as exc:
        return _failed(pk, str(exc))
    except DriverError as exc:
        return _failed(pk, f"The outgoing server did not take the message: {exc}")
    except Exception:
        log.exception("insights: scheduled send %s failed", pk)
        return _failed(pk, "crmail could not send it: an unexpected error (see the log).")
    ScheduledAttachment.objects.filter(scheduled_id=pk).delete()
    if row.answers is not None:
        link_answer(sent.message, row.answers, row.user)
    return ScheduledState.SENT


def _failed(pk: int, words: str) -> str:
    ScheduledSend.objects.filter(pk=pk, state=ScheduledState.SENDING).update(
        state=ScheduledState.FAILED, error=words, finished_at=timezone.now(), claimed_until=None
    )
    return ScheduledState.FAILED


def pending(user: User) -> list[ScheduledSend]:
    """``user``'s scheduled messages: waiting first (soonest first), then the last 50 done."""
    mine = ScheduledSend.objects.filter(user=user)
    waiting = list(mine.filter(state__in=(ScheduledState.SCHEDULED, ScheduledState.SENDING)))
    done = list(
        mine.exclude(state__in=(ScheduledState.SCHEDULED, ScheduledState.SENDING)).order_by(
            "-finished_at", "-pk"
        )[:50]
    )
    return waiting + done


def scheduled_words(row: ScheduledSend) -> str:
    """What the composer says once a message is scheduled."""
    subject = row.subject or "(no subject)"
    at = f"at {row.best_time_of}'s best time, " if row.best_time_of else ""
    return f"Your email “{subject}” will be sent {at}on {when(row.send_at)}."
