"""Sorting mail under the labels by deal state as jobs (SPEC F8).

``sort_all`` runs every ten minutes (on one worker, decision 004) and queues a sort of each
mailbox whose labels are on; ``request_sort`` queues one at once (labels switched on, a
deal changed: ``receivers``). One sort, undo or removal of a mailbox runs at a time, under
the lease ``mailbox-labels:<id>``; a sort asked for meanwhile runs a little later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from crmail.jobs import leases
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.drivers.base import Driver, DriverError
from crmail.mailboxes.labels import sorting
from crmail.mailboxes.models import LabelMove, Mailbox
from crmail.people.actions import NotAllowed
from crmail.people.models import User

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(minutes=10)
SORT_EVERY = 10  # minutes
RETRY_BUSY = 60  # seconds: a sort asked for while another runs waits this long

T = TypeVar("T")


class Busy(Exception):
    """Another sort, undo or removal of this mailbox is running."""


def lease_name(mailbox_id: int) -> str:
    return f"mailbox-labels:{mailbox_id}"


@contextmanager
def session(mailbox: Mailbox) -> Iterator[Driver]:
    """A driver for ``mailbox`` under its labels lease; ``Busy`` when the lease is held."""
    name, holder = lease_name(mailbox.pk), leases.unique_identity()
    if not leases.acquire(name, holder, LEASE_TTL):
        raise Busy("The labels of this mailbox are being sorted right now: try again shortly.")
    try:
        driver = open_driver(mailbox)
        try:
            yield driver
        finally:
            driver.close()
    finally:
        leases.release(name, holder)


def _active(mailbox_id: int) -> Mailbox | None:
    return (
        Mailbox.objects.select_related("owner").filter(pk=mailbox_id, owner__is_active=True).first()
    )


def _quietly(mailbox_id: int, what: str, work: Callable[[Mailbox, Driver], T]) -> T | None:
    mailbox = _active(mailbox_id)
    if mailbox is None:
        return None
    try:
        with session(mailbox) as driver:
            return work(mailbox, driver)
    except Busy:
        retry = sort_task if what == "sort" else remove_task
        retry.schedule((mailbox_id,), delay=RETRY_BUSY)
    except DriverError as exc:
        log.info("labels: %s of mailbox %s failed: %s", what, mailbox_id, exc)
    return None


@db_task(name="mailbox.labels.sort")
def sort_task(mailbox_id: int) -> int | None:
    """Sort one mailbox's mail under its labels; the number of messages moved."""

    def work(mailbox: Mailbox, driver: Driver) -> int | None:
        if not sorting.is_on(mailbox):
            return None
        return len(sorting.sort_mailbox(mailbox, driver).moves)

    return _quietly(mailbox_id, "sort", work)


@db_task(name="mailbox.labels.remove")
def remove_task(mailbox_id: int) -> int | None:
    """Take the labels off one mailbox's server (labels switched off, removal asked);
    the number of messages put back in the Inbox."""

    def work(mailbox: Mailbox, driver: Driver) -> int | None:
        if mailbox.deal_labels:  # switched on again meanwhile
            return None
        return len(sorting.remove_labels(mailbox, driver))

    return _quietly(mailbox_id, "removal", work)


def request_sort(mailbox_id: int) -> None:
    sort_task(mailbox_id)


def request_removal(mailbox_id: int) -> None:
    remove_task(mailbox_id)


def sorted_mailboxes() -> list[int]:
    """Ids of the mailboxes whose mail is sorted under labels."""
    return list(
        Mailbox.objects.filter(
            is_active=True, owner__is_active=True, customer_alerts=True, deal_labels=True
        ).values_list("pk", flat=True)
    )


@db_periodic_task(crontab(minute=f"*/{SORT_EVERY}"), name="mailbox.labels.sort_all")
def sort_all() -> None:
    """Queue a sort of every mailbox whose labels are on (every ten minutes)."""
    for pk in sorted_mailboxes():
        sort_task(pk)


def undo(actor: User, move: LabelMove) -> LabelMove:
    """Undo ``move`` at once (the mailbox page's button): ``NotAllowed`` but for the
    mailbox's owner; ``sorting.CannotUndo``, ``Busy`` or ``DriverError`` in words when it
    cannot be."""
    if actor.pk != move.mailbox.owner_id:
        raise NotAllowed("Only the mailbox's owner moves its mail back.")
    problem = sorting.undo_problem(move)
    if problem:
        raise sorting.CannotUndo(problem)
    with session(move.mailbox) as driver:
        return sorting.undo(actor, move, driver)
