"""Sync jobs: one sync per mailbox at a time, and the minute scheduler's choice of who is due."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from django.utils import timezone

from crmail.jobs import leases
from crmail.jobs.models import Lease
from crmail.mail.models import Message
from crmail.mailboxes import tasks
from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.models import Location, Mailbox, SyncState
from tests import factories as f

pytestmark = pytest.mark.django_db


def mail(n: int) -> bytes:
    return (
        f"From: Client {n} <client{n}@example.com>\r\nTo: rep@crmail.test\r\n"
        f"Subject: Message {n}\r\nMessage-ID: <task{n}@example.com>\r\n\r\nBody {n}\r\n"
    ).encode()


@pytest.fixture
def account(dovecot):
    name, password = dovecot.new_user()
    return dovecot, name, f.mailbox(dovecot, name, password)


def test_the_sync_task_stores_the_mail_and_frees_the_lease(account):
    server, user, mailbox = account
    for n in range(3):
        server.deliver(user, mail(n))
    tasks.sync_task(mailbox.pk)  # the test queue runs jobs at once
    mailbox.refresh_from_db()
    assert mailbox.state == SyncState.COMPLETED
    assert Message.objects.filter(locations__mailbox=mailbox).count() == 3
    assert not Lease.objects.filter(name=tasks.sync_lease(mailbox.pk)).exists()


def test_a_second_sync_waits_for_the_first(account):
    server, user, mailbox = account
    server.deliver(user, mail(1))
    assert leases.acquire(tasks.sync_lease(mailbox.pk), "other-host:1", dt.timedelta(minutes=5))
    assert tasks.is_syncing(mailbox)
    with pytest.raises(tasks.AlreadySyncing):
        tasks.run_sync(mailbox)
    tasks.sync_task(mailbox.pk)  # the job leaves a busy mailbox alone
    assert not Message.objects.filter(locations__mailbox=mailbox).exists()
    assert Lease.objects.get(name=tasks.sync_lease(mailbox.pk)).holder == "other-host:1"


def test_two_threads_of_one_worker_never_sync_one_mailbox_at_once(account):
    # A job thread and the IDLE watcher's sync thread share the worker's pid: the lease
    # must still keep the second out while the first runs, and stay held until it ends.
    server, user, mailbox = account
    server.deliver(user, mail(1))
    seen: list[str] = []

    def second_sync(m: Mailbox) -> None:
        if seen:
            return
        try:
            tasks.run_sync(Mailbox.objects.get(pk=m.pk))
            seen.append("ran")
        except tasks.AlreadySyncing:
            seen.append("busy")
        seen.append("held" if tasks.is_syncing(m) else "lost")

    tasks.run_sync(mailbox, progress=second_sync)
    assert seen == ["busy", "held"]
    assert not tasks.is_syncing(mailbox)


def test_a_sync_stopped_by_an_unexpected_error_says_so_and_runs_again_later(account, monkeypatch):
    server, user, mailbox = account
    server.deliver(user, mail(1))

    def broken(raws, room=None, describe=None):  # stands for a bug anywhere on the sync path
        raise RuntimeError("zstd: Src size is incorrect")

    monkeypatch.setattr("crmail.mailboxes.sync.store_rows", broken)
    with pytest.raises(RuntimeError):
        tasks.run_sync(mailbox)
    mailbox.refresh_from_db()
    assert mailbox.state == SyncState.ERROR  # not "syncing" for ever
    assert "unexpected error" in mailbox.last_error and "zstd" not in mailbox.last_error
    assert not tasks.is_syncing(mailbox)
    assert mailbox.pk not in tasks.due_mailboxes()  # retried after a pause, not at once
    later = timezone.now() + tasks.RETRY_AFTER_ERROR + dt.timedelta(seconds=1)
    assert mailbox.pk in tasks.due_mailboxes(later)

    monkeypatch.undo()
    tasks.run_sync(mailbox)
    mailbox.refresh_from_db()
    assert (mailbox.state, mailbox.last_error) == (SyncState.COMPLETED, "")


def test_a_failed_login_is_recorded_in_words(dovecot):
    name, _ = dovecot.new_user()
    mailbox = f.mailbox(dovecot, name, "not-the-password")
    with pytest.raises(DriverError):
        tasks.run_sync(mailbox)
    mailbox.refresh_from_db()
    assert mailbox.state == SyncState.ERROR
    assert "password" in mailbox.last_error.lower()
    tasks.sync_task(mailbox.pk)  # the job records the failure and does not raise
    assert not Lease.objects.filter(name=tasks.sync_lease(mailbox.pk)).exists()


def make(state: str, **fields) -> Mailbox:
    owner = fields.pop("owner", None) or f.user()
    return Mailbox.objects.create(
        owner=owner, email=owner.email, host="mail.example.com", state=state, **fields
    )


def test_the_scheduler_picks_the_mailboxes_that_are_due():
    now = timezone.now()
    today = dt.date.today()
    long_ago, just_now = now - dt.timedelta(hours=1), now - dt.timedelta(seconds=30)
    running = make(SyncState.SYNCING, sync_started_at=just_now)
    leases.acquire(tasks.sync_lease(running.pk), "other-host:1", dt.timedelta(minutes=5))
    interrupted = make(SyncState.SYNCING, sync_started_at=just_now)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    gone = f"{leases.process_identity().rpartition(':')[0]}:{ended.pid}"
    leases.acquire(tasks.sync_lease(interrupted.pk), gone, dt.timedelta(minutes=5))
    due = {
        make(SyncState.NEW).pk,
        make(SyncState.COMPLETED, last_sync_at=long_ago).pk,
        make(SyncState.ERROR, sync_started_at=long_ago).pk,
        make(SyncState.PAUSED, bytes_day=today - dt.timedelta(days=1)).pk,
        make(SyncState.SYNCING, sync_started_at=long_ago).pk,  # its worker died
        # Interrupted now: its lease is gone, or its holder on this machine has ended.
        make(SyncState.SYNCING, sync_started_at=just_now).pk,
        interrupted.pk,
        make(SyncState.NEW, protocol="gmail").pk,  # keeps a copy through the API
        # Asked live, but synced for the Mail ID, From and received time alerts need.
        make(SyncState.NEW, protocol="gmail", keeps_copy=False).pk,
    }
    not_due = [
        make(SyncState.COMPLETED, last_sync_at=just_now),
        make(SyncState.ERROR, sync_started_at=just_now),
        make(SyncState.PAUSED, bytes_day=today),  # the provider's limit resets tomorrow
        running,
        make(SyncState.NEEDS_REAUTH),  # waits for its owner to sign in again
        make(SyncState.NEW, is_active=False),
        make(SyncState.NEW, owner=f.user(is_active=False)),
    ]
    busy = make(SyncState.NEW)
    leases.acquire(tasks.sync_lease(busy.pk), "other-host:1", dt.timedelta(minutes=5))
    assert set(tasks.due_mailboxes(now)) == due
    assert not {m.pk for m in not_due} & set(tasks.due_mailboxes(now))


def test_the_scheduler_syncs_what_is_due(account):
    server, user, mailbox = account
    server.deliver(user, mail(7))
    tasks.schedule_syncs.call_local()
    mailbox.refresh_from_db()
    assert mailbox.state == SyncState.COMPLETED
    assert Message.objects.filter(locations__mailbox=mailbox, message_id="task7@example.com")


def test_connections_stay_within_the_providers_limit(account):
    from crmail.mailboxes.connect import ConnectionSlot, max_connections, open_driver

    _, _, mailbox = account
    limit = ConnectionSlot.limit(mailbox)
    assert limit == max_connections(mailbox) - 1  # one stays free for the IDLE watcher
    drivers = [open_driver(mailbox) for _ in range(limit)]
    try:
        with pytest.raises(DriverError, match="connections the provider allows") as busy:
            open_driver(mailbox)
        assert busy.value.kind == "busy"
        drivers.pop().close()
        drivers.append(open_driver(mailbox))  # a closed connection frees its slot
    finally:
        for driver in drivers:
            driver.close()
    assert not Lease.objects.filter(name__startswith=f"mailbox-connection:{mailbox.pk}:")


def test_a_daily_transfer_cap_pauses_the_first_sync_and_it_resumes_the_next_day(
    account, monkeypatch
):
    import dataclasses

    from crmail.mailboxes import connect, sync
    from crmail.mailboxes.providers import preset

    server, user, mailbox = account
    for n in range(12):
        server.deliver(user, mail(n))
    # A provider whose daily limit is about four of these messages.
    capped = dataclasses.replace(preset("gmail"), daily_bytes=4 * len(mail(0)))
    monkeypatch.setattr(connect, "preset", lambda key: capped)
    monkeypatch.setattr(sync, "BATCH_MESSAGES", 2)
    tasks.sync_task(mailbox.pk)
    mailbox.refresh_from_db()
    assert mailbox.state == SyncState.PAUSED and "resumes tomorrow" in mailbox.last_error
    stored = Message.objects.filter(locations__mailbox=mailbox).count()
    assert 4 <= stored < 12
    tasks.sync_task(mailbox.pk)  # "Sync now" the same day fetches nothing more
    assert Message.objects.filter(locations__mailbox=mailbox).count() == stored
    assert mailbox.pk not in tasks.due_mailboxes()
    # The next day the scheduler resumes it, until the cap pauses it again, and so on.
    for _day in range(5):
        Mailbox.objects.filter(pk=mailbox.pk).update(bytes_day=dt.date.today() - dt.timedelta(1))
        assert mailbox.pk in tasks.due_mailboxes()
        tasks.schedule_syncs.call_local()
        mailbox.refresh_from_db()
        if mailbox.state == SyncState.COMPLETED:
            break
    assert mailbox.state == SyncState.COMPLETED
    assert Message.objects.filter(locations__mailbox=mailbox).count() == 12
    assert Location.objects.filter(mailbox=mailbox).count() == 12  # nothing twice
