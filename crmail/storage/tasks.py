"""Email storage's jobs (SPEC F11): every minute the warnings (and a first count after an
upgrade, when no counter exists yet); every ten minutes the day's figures for the growth
chart; every five minutes, and when the quota grows, the bodies that wait, fetched as
long as there is room, by one process at a time."""

from __future__ import annotations

import logging
from datetime import timedelta

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from crmail.jobs import leases
from crmail.mail.models import WaitingBody
from crmail.mailboxes import bodies, usage
from crmail.mailboxes.models import Location, StorageUsage
from crmail.storage import history, thresholds

log = logging.getLogger(__name__)

BODIES_LEASE = "storage-bodies"
BODIES_TTL = timedelta(minutes=30)


@db_periodic_task(crontab(minute="*"), name="storage.sweep")
def sweep() -> None:
    if not StorageUsage.objects.exists() and Location.objects.exists():
        usage.recount()  # counters start from the index after an upgrade
    thresholds.check()


@db_periodic_task(crontab(minute="*/10"), name="storage.snapshot")
def snapshot() -> None:
    history.snapshot()


def fetch_waiting() -> bodies.Fetched:
    """Fetch waiting bodies while they fit, unless another process is at it."""
    if not WaitingBody.objects.exists():
        return bodies.Fetched()
    holder = leases.unique_identity()
    if not leases.acquire(BODIES_LEASE, holder, BODIES_TTL):
        return bodies.Fetched()
    try:
        done = bodies.fetch_while_room()
    finally:
        leases.release(BODIES_LEASE, holder)
    for problem in done.problems:
        log.info("storage: a waiting body was not fetched: %s", problem)
    if done.stored:
        thresholds.check()
    return done


@db_periodic_task(crontab(minute="*/5"), name="storage.fetch_waiting")
def fetch_waiting_job() -> None:
    fetch_waiting()


@db_task(name="storage.fetch_soon")
def fetch_soon() -> None:
    """Queued when the quota grows: the bodies that wait come at once."""
    fetch_waiting()
