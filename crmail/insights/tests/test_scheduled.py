"""Mail sent later: it reaches the SMTP server at its time (the clock given), once, from
the database alone (a worker restart loses nothing), and can be cancelled until sent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crmail.config import durable
from crmail.insights import scheduling, tasks
from crmail.insights.models import ScheduledSend, ScheduledState
from crmail.mailboxes.models import SentMessage

from .world import draft, html_of

pytestmark = pytest.mark.django_db


def test_a_scheduled_email_reaches_the_server_at_its_time_and_not_before(on):
    now = timezone.now()
    send_at = now + timedelta(hours=2)
    files = [("terms.pdf", "application/pdf", b"%PDF-1.4 terms")]
    row = scheduling.schedule(
        on.user, draft(attachments=files), send_at=send_at, mailbox=on.mailbox, now=now
    )
    assert row.state == ScheduledState.SCHEDULED and row.attachments.count() == 1
    # A minute early: nothing goes.
    assert scheduling.send_scheduled(row.pk, now=send_at - timedelta(minutes=1)) == "scheduled"
    assert on.sink.messages == []
    # At its time it goes, tracked (tracking is on), with its file.
    assert scheduling.send_scheduled(row.pk, now=send_at) == "sent"
    [got] = on.sink.wait_for(1, 5)
    assert got.rcpt_tos == ["ann@acme.example"]
    assert b"terms.pdf" in got.data and "/t/o/" in html_of(got.data)
    row.refresh_from_db()
    assert row.state == ScheduledState.SENT and row.sent == SentMessage.objects.get()
    assert not row.attachments.exists()  # its files are not kept once sent
    # Again (a second job, the minute's sweep): nothing is sent twice.
    assert scheduling.send_scheduled(row.pk, now=send_at + timedelta(minutes=1)) == "sent"
    assert len(on.sink.wait_for(1, 1)) == 1


def test_a_worker_restart_loses_nothing_and_sends_nothing_twice(on):
    """The job queued for its time is lost with the worker (a queue that died with it);
    the next worker's minute sweep finds the row in the database and sends it once; a
    late copy of the old job then finds it sent."""
    earlier = timezone.now() - timedelta(hours=1)
    row = scheduling.schedule(
        on.user, draft(), send_at=earlier + timedelta(minutes=30), mailbox=on.mailbox, now=earlier
    )
    tasks.send_due.call_local()  # the new worker's first minute
    tasks.send_due.call_local()
    tasks.send_job.call_local(row.pk)  # the lost job, delivered late after all
    assert len(on.sink.wait_for(1, 5)) == 1
    row.refresh_from_db()
    assert row.state == ScheduledState.SENT


def test_the_claim_is_on_disk_before_the_email_goes(on, monkeypatch):
    # SQLite syncs its log only at checkpoints: after a power cut mid-send, a claim that
    # was not on disk would come back "scheduled" and the email would go twice.
    synced = []

    def sync_commits() -> None:  # the rows' states and the mail sent so far, when synced
        synced.append(
            (list(ScheduledSend.objects.values_list("state", flat=True)), on.sink.messages[:])
        )

    monkeypatch.setattr(durable, "sync_commits", sync_commits)
    now = timezone.now()
    send_at = now + timedelta(minutes=5)
    row = scheduling.schedule(on.user, draft(), send_at=send_at, mailbox=on.mailbox, now=now)
    assert scheduling.send_scheduled(row.pk, now=send_at) == "sent"
    assert synced == [([ScheduledState.SENDING], [])]
    assert len(on.sink.wait_for(1, 5)) == 1


def test_a_send_interrupted_by_a_dead_worker_is_not_sent_again_and_says_so(on):
    earlier = timezone.now() - timedelta(hours=1)
    row = scheduling.schedule(
        on.user, draft(), send_at=earlier + timedelta(minutes=1), mailbox=on.mailbox, now=earlier
    )
    # A worker claimed it, then died before storing anything; its claim has lapsed.
    ScheduledSend.objects.filter(pk=row.pk).update(
        state=ScheduledState.SENDING, claimed_until=timezone.now() - timedelta(minutes=1)
    )
    tasks.send_due.call_local()
    row.refresh_from_db()
    assert row.state == ScheduledState.FAILED and "may or may not have gone out" in row.error
    assert on.sink.messages == []


def test_a_cancelled_email_is_never_sent(on):
    now = timezone.now()
    row = scheduling.schedule(on.user, draft(), send_at=now + timedelta(hours=1), now=now)
    scheduling.cancel(on.user, row.pk)
    assert scheduling.send_scheduled(row.pk, now=now + timedelta(hours=2)) == "cancelled"
    assert on.sink.messages == []
    with pytest.raises(scheduling.NotCancellable, match="cancelled already"):
        scheduling.cancel(on.user, row.pk)


def test_only_its_writer_cancels_it_and_not_once_sent(on):
    from tests import factories as f

    now = timezone.now()
    row = scheduling.schedule(on.user, draft(), send_at=now + timedelta(minutes=5), now=now)
    with pytest.raises(ScheduledSend.DoesNotExist):
        scheduling.cancel(f.user("other@crmail.test"), row.pk)
    scheduling.send_scheduled(row.pk, now=now + timedelta(minutes=5))
    with pytest.raises(scheduling.NotCancellable, match="sent already"):
        scheduling.cancel(on.user, row.pk)


def test_what_cannot_be_sent_later_is_refused_now_or_said_when_it_fails(on):
    from crmail.mail.compose import ComposeError

    now = timezone.now()
    with pytest.raises(scheduling.ScheduleError, match="future"):
        scheduling.schedule(on.user, draft(), send_at=now - timedelta(minutes=1), now=now)
    with pytest.raises(ComposeError):
        scheduling.schedule(
            on.user, draft(subject="a\r\nBcc: x@evil.example"), send_at=now + timedelta(hours=1)
        )
    # A From the mailbox may not send as is found out at its time, and said.
    row = scheduling.schedule(
        on.user, draft(sender="ceo@elsewhere.example"), send_at=now + timedelta(hours=1), now=now
    )
    assert scheduling.send_scheduled(row.pk, now=now + timedelta(hours=1)) == "failed"
    row.refresh_from_db()
    assert "ceo@elsewhere.example" in row.error and on.sink.messages == []
