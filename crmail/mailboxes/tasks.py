"""Syncing mailboxes as jobs: one sync of a mailbox at a time, whoever asks (SPEC F2).

``run_sync`` is the one way to sync: the huey task, ``crmail mailbox sync`` and the IDLE
watcher all call it. It holds the lease ``mailbox-sync:<id>`` (shared by every worker
through the database) for as long as the sync runs, renewing it as batches land, so two
workers never sync one mailbox at once and a killed worker's mailbox is free again once
its lease expires (at once when the holder ran on this machine).

``schedule_syncs`` runs every minute on one worker and queues the mailboxes that are due:
never synced, due for polling, retrying after an error, resuming after a provider's
daily transfer limit (the next day) or once the wait a provider asked for is over, or
interrupted (marked syncing, but the process that held its lease is gone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from crmail.jobs import leases
from crmail.jobs.models import Lease
from crmail.mailboxes.connect import SUPPORTED_PROTOCOLS, ConnectionSlot, open_driver
from crmail.mailboxes.drivers.base import DriverError, Throttled
from crmail.mailboxes.models import Mailbox, SyncState
from crmail.mailboxes.sync import SyncReport, record_failure, resume_times, sync_mailbox
from crmail.mailboxes.twoway import mark_read_now

log = logging.getLogger(__name__)

SYNC_LEASE_TTL = timedelta(minutes=5)
# How often a mailbox is synced when nothing tells crmail about new mail sooner (the
# IDLE watcher syncs the Inbox at once; other folders wait for this).
POLL_EVERY = timedelta(minutes=5)
RETRY_AFTER_ERROR = timedelta(minutes=15)


class AlreadySyncing(Exception):
    """Another process is syncing this mailbox right now."""


def sync_lease(mailbox_id: int) -> str:
    return f"mailbox-sync:{mailbox_id}"


def run_sync(mailbox: Mailbox, progress: Callable[[Mailbox], None] | None = None) -> SyncReport:
    """Sync ``mailbox`` to completion under its lease; raise AlreadySyncing when taken.

    Driver errors propagate after the mailbox's state records them in words.
    """
    # Per run, not per process: a job thread and a watcher thread of one worker are rivals.
    lease, holder = sync_lease(mailbox.pk), leases.unique_identity()
    if not leases.acquire(lease, holder, SYNC_LEASE_TTL):
        raise AlreadySyncing(f"A sync of {mailbox.email} is already running.")

    slot: ConnectionSlot | None = None

    def renew(m: Mailbox) -> None:
        leases.acquire(lease, holder, SYNC_LEASE_TTL)
        if slot is not None:
            slot.renew()
        if progress is not None:
            progress(m)

    try:
        slot = ConnectionSlot.take(mailbox)
        driver = open_driver(mailbox, slot)
        try:
            return sync_mailbox(mailbox, driver, progress=renew)
        finally:
            driver.close()
    except DriverError as exc:
        # Failing to connect never reaches sync_mailbox: record it the same way.
        if mailbox.last_error != str(exc) or isinstance(exc, Throttled):
            record_failure(mailbox, exc)
        raise
    finally:
        leases.release(lease, holder)


def is_syncing(mailbox: Mailbox) -> bool:
    """True while some process holds the mailbox's sync lease (a holder on this machine
    whose process has ended holds nothing)."""
    holder = (
        Lease.objects.filter(name=sync_lease(mailbox.pk), expires_at__gte=timezone.now())
        .values_list("holder", flat=True)
        .first()
    )
    return holder is not None and not leases.holder_is_gone(holder)


def is_interrupted(mailbox: Mailbox) -> bool:
    """True when ``mailbox`` is marked syncing but no sync runs: the process syncing it was
    killed or crashed, and its lease has lapsed. The next sync carries on from the last
    committed batch (the scheduler picks it up once the lease's time is over)."""
    return mailbox.state == SyncState.SYNCING and not is_syncing(mailbox)


@db_task(name="mailbox.sync")
def sync_task(mailbox_id: int) -> None:
    """Sync one mailbox; a missing, deactivated or busy mailbox is left alone."""
    mailbox = Mailbox.objects.select_related("owner").filter(pk=mailbox_id).first()
    if mailbox is None or not mailbox.is_active or not mailbox.owner.is_active:
        return
    try:
        run_sync(mailbox)
    except AlreadySyncing:
        pass
    except DriverError as exc:
        log.info("sync of mailbox %s failed: %s", mailbox_id, exc)


def request_sync(mailbox: Mailbox) -> None:
    """Queue a sync of ``mailbox`` now (the "Sync now" button, a newly connected mailbox)."""
    sync_task(mailbox.pk)


def due_mailboxes(now: datetime | None = None) -> list[int]:
    """Ids of the active mailboxes whose next sync is due."""
    now = now or timezone.now()
    today = date.today()
    due = (
        Q(state=SyncState.NEW)
        | Q(state=SyncState.COMPLETED, last_sync_at__lt=now - POLL_EVERY)
        | Q(state=SyncState.COMPLETED, last_sync_at__isnull=True)
        | Q(state=SyncState.ERROR, sync_started_at__lt=now - RETRY_AFTER_ERROR)
        | Q(state=SyncState.ERROR, sync_started_at__isnull=True)
        # Paused: when the day's transfer cap resets, or the provider's wait is over.
        | Q(state=SyncState.PAUSED)
        # Marked syncing: due when interrupted (no live holder of its lease, below).
        | Q(state=SyncState.SYNCING)
    )
    rows = list(
        Mailbox.objects.filter(
            due,
            is_active=True,
            owner__is_active=True,
            protocol__in=SUPPORTED_PROTOCOLS,
        ).values_list("pk", "state", "bytes_day")
    )
    paused = [pk for pk, state, _ in rows if state == SyncState.PAUSED]
    resume = resume_times(paused) if paused else {}
    ids = [
        pk
        for pk, state, day in rows
        if state != SyncState.PAUSED
        or (resume[pk] <= now if pk in resume else day is not None and day < today)
    ]
    busy = {
        int(name.rpartition(":")[2])
        for name, holder in Lease.objects.filter(
            name__startswith="mailbox-sync:", expires_at__gte=now
        ).values_list("name", "holder")
        if not leases.holder_is_gone(holder)
    }
    return [pk for pk in ids if pk not in busy]


@db_periodic_task(crontab(minute="*"), name="mailbox.schedule_syncs")
def schedule_syncs() -> None:
    """Queue a sync for every mailbox that is due (runs on one worker each minute)."""
    for pk in due_mailboxes():
        sync_task(pk)


@db_task(name="mailbox.mark_read")
def mark_read(user_id: int, location_id: int) -> bool:
    """Mark a message read on the server, then in crmail, after its owner opened it: the
    page never waits for the server. A refusal leaves both sides unread (logged without
    the message), and the next opening tries again."""
    done = mark_read_now(user_id, location_id)
    if not done:
        log.info("copy %s was not marked read on the server", location_id)
    return done
