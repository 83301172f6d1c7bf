"""Handing the outbox to its consumers: sequencing, batches, retries, parking, pruning.

Every step is safe to run twice and from several processes at once: the sequencer and
each consumer's place are rows taken with a lock (``SELECT … FOR UPDATE``; SQLite's
IMMEDIATE transactions serialise writers the same way), so two dispatchers never hand the
same batch out twice, and a crash rolls back to the last committed position. A preparing
consumer's batch is prepared before that lock is taken (``registry.preparing_consumer``)
and written under it only if it is still the batch the consumer's place says is next.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, Min, OuterRef, QuerySet, Subquery
from django.utils import timezone

from crmail.config import env
from crmail.events.kinds import load
from crmail.events.models import ConsumerState, Event, Failure, Sequencer
from crmail.events.registry import CONSUMERS, Consumer, Delivered, EventRow, Write

log = logging.getLogger(__name__)

SEQUENCE_BATCH = 2000
# Waits before each retry of a failed event; after the last one it is parked.
RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=4),
)
ERROR_LIMIT = 4000
# The longest a consumer that gives way to another (``Consumer.gives_way_to``) waits before
# a batch of its own, so that it is never held back for good.
GIVE_WAY = timedelta(seconds=2)
# An idle consumer (``registry.consumer``) passes at most this many positions a step.
IDLE_STEP = 50_000


def retention() -> timedelta:
    """How long handled events are kept (``CRMAIL_EVENTS_RETENTION_DAYS``, default 30)."""
    return timedelta(days=env.whole_number("CRMAIL_EVENTS_RETENTION_DAYS", 30, minimum=1))


# -- sequencing ------------------------------------------------------------------------


def _sequencer() -> Sequencer:
    """The sequencer's row, locked until the transaction ends (made on first use)."""
    for _ in range(2):
        row = Sequencer.objects.select_for_update().filter(pk=1).first()
        if row is not None:
            return row
        try:
            with transaction.atomic():
                Sequencer.objects.create(pk=1, last_position=0)
        except IntegrityError:
            pass  # another process made it meanwhile
    return Sequencer.objects.select_for_update().get(pk=1)


def sequence() -> int:
    """Give committed events without a position the next positions, in id order; the
    number given. One UPDATE numbers a batch (a window function over the ids)."""
    table = connection.ops.quote_name(Event._meta.db_table)
    sql = f"""
        UPDATE {table} SET position = %s + numbered.n
        FROM (
            SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM {table}
            WHERE position IS NULL ORDER BY id LIMIT %s
        ) AS numbered
        WHERE {table}.id = numbered.id
    """  # noqa: S608  (the table name comes from the model; values are parameters)
    if not Event.objects.filter(position__isnull=True).exists():
        return 0  # nothing committed waits (the lock is not taken for nothing)
    given = 0
    while True:
        with transaction.atomic():
            row = _sequencer()
            with connection.cursor() as cursor:
                cursor.execute(sql, [row.last_position, SEQUENCE_BATCH])
                numbered = cursor.rowcount
            if numbered <= 0:
                return given
            row.last_position += numbered
            row.save(update_fields=["last_position"])
            given += numbered
        if numbered < SEQUENCE_BATCH:
            return given


def high_water() -> int:
    """The last position given."""
    return Sequencer.objects.filter(pk=1).values_list("last_position", flat=True).first() or 0


# -- consuming -------------------------------------------------------------------------


def start_all() -> None:
    """Make the rows of registered consumers that have none. A consumer new to this
    installation starts at the current end of the outbox (it does not replay what happened
    before it existed), so this runs before anything is sequenced (``dispatch``): it then
    gets every event that committed after it was deployed."""
    have = set(
        ConsumerState.objects.filter(name__in=list(CONSUMERS)).values_list("name", flat=True)
    )
    for name in CONSUMERS.keys() - have:
        try:
            with transaction.atomic():
                ConsumerState.objects.create(name=name, position=high_water())
        except IntegrityError:
            pass  # made by another process meanwhile


def _locked(name: str) -> ConsumerState | None:
    """The consumer's row locked, or None while another dispatcher works on it."""
    rows = ConsumerState.objects.filter(name=name)
    if connection.features.has_select_for_update_skip_locked:
        rows = rows.select_for_update(skip_locked=True)
    return rows.first()


def _limit(consumer: Consumer) -> int:
    """The last position ``consumer`` may read: the end of the outbox, or, for a consumer
    ``after`` another, that one's position (what it has not handled yet waits)."""
    high = high_water()
    if consumer.after is None:
        return high
    before = (
        ConsumerState.objects.filter(name=consumer.after).values_list("position", flat=True).first()
    )
    return min(high, before if before is not None else 0)


def _delivered(rows: Iterable[EventRow]) -> list[Delivered]:
    return [Delivered(event=e, data=load(e.kind, e.data)) for e in rows]


_ROW_FIELDS = tuple(field.name for field in fields(EventRow))


def _rows(events: QuerySet[Event], limit: int) -> list[EventRow]:
    """The first ``limit`` of ``events``, read as rows (no model instances)."""
    return [EventRow(*row) for row in events.values_list(*_ROW_FIELDS)[:limit]]


def _events(consumer: Consumer, position: int, high: int) -> QuerySet[Event]:
    """The events of ``consumer``'s kinds after ``position`` up to ``high``, in order."""
    return Event.objects.filter(
        position__gt=position, position__lte=high, kind__in=consumer.kinds
    ).order_by("position")


@dataclass(frozen=True)
class _Prepared:
    """A preparing consumer's batch, prepared outside the batch's transaction: the place it
    starts after, its events and its writes."""

    position: int
    rows: list[EventRow]
    write: Write


# Preparing consumers' batches one at a time in this process: two of a consumer's jobs
# would otherwise prepare the same batch, one of them for nothing (and hold a job worker
# thread that the other consumers wait for).
_preparing: dict[str, threading.Lock] = {}
_preparing_guard = threading.Lock()


def _preparing_lock(name: str) -> threading.Lock:
    with _preparing_guard:
        return _preparing.setdefault(name, threading.Lock())


def _prepare(consumer: Consumer) -> _Prepared | None:
    """``consumer``'s next batch prepared, read without any lock (its preparer shown the
    events after it, up to its ``ahead``); None when nothing waits, or when preparing
    failed (the batch is then handled whole in its transaction, where a failure is
    recorded)."""
    assert consumer.prepare is not None
    position = (
        ConsumerState.objects.filter(name=consumer.name).values_list("position", flat=True).first()
    )
    if position is None:
        return None
    found = _rows(_events(consumer, position, _limit(consumer)), consumer.batch + consumer.ahead)
    rows, upcoming = found[: consumer.batch], found[consumer.batch :]
    if not rows:
        return None
    try:
        write = consumer.prepare(_delivered(rows), _delivered(upcoming))
    except Exception:
        log.info("events: preparing a batch of %s failed; handled whole", consumer.name)
        return None
    return _Prepared(position, rows, write)


def _run_batch(consumer: Consumer) -> int | None:
    """Hand ``consumer`` its next events, at most a batch of them; how many, or None when
    nothing is left (or another dispatcher has it). Positions of other kinds are passed
    over in the same step."""
    if consumer.prepare is None:
        return _hand_batch(consumer, None)
    lock = _preparing_lock(consumer.name)
    if not lock.acquire(blocking=False):
        # Another thread here has the batch; it looks again for what came once it is
        # done, after this one gives up.
        return None
    try:
        return _hand_batch(consumer, _prepare(consumer))
    finally:
        lock.release()


def _hand_batch(consumer: Consumer, prepared: _Prepared | None) -> int | None:
    with transaction.atomic():
        state = _locked(consumer.name)
        if state is None:
            return None
        high = _limit(consumer)
        if state.position >= high:
            return None
        events = _events(consumer, state.position, high)
        if consumer.idle is not None and consumer.idle():
            # Nothing would be done with them: passed unread, up to ``IDLE_STEP``
            # positions a step (a first sync's tens of thousands of events in one).
            upto = min(high, state.position + IDLE_STEP)
            passed = events.filter(position__lte=upto).count()
            state.position = upto
            state.handled += passed
            state.save(update_fields=["position", "handled", "updated_at"])
            return passed
        if prepared is not None:
            # Still the batch that was prepared? Its events' ids tell, and one more
            # whether more came since (the batch is then what was prepared).
            rows = prepared.rows
            found = list(events.values_list("pk", flat=True)[: len(rows) + 1])
            if prepared.position == state.position and found[: len(rows)] == [r.pk for r in rows]:
                more = len(rows) == consumer.batch or len(found) > len(rows)
            else:
                prepared = None  # another dispatcher handled them meanwhile
        if prepared is None:
            rows = _rows(events, consumer.batch)
            more = len(rows) == consumer.batch
        # A full batch ends at its last event (more may follow); a short one at ``high``.
        upto = rows[-1].position if more else high
        if rows:
            try:
                with transaction.atomic():
                    if prepared is not None:
                        prepared.write()
                    else:
                        consumer.handler(_delivered(rows))
            except Exception:
                log.warning(
                    "events: %s failed on a batch of %d; handling them one by one",
                    consumer.name,
                    len(rows),
                    exc_info=True,
                )
                for row in rows:
                    _handle_one(consumer, row, None)
        state.position = upto
        state.handled += len(rows)
        state.save(update_fields=["position", "handled", "updated_at"])
        return len(rows)


def _behind(name: str) -> bool:
    """Whether consumer ``name`` has positions left to pass (read without a lock: a cheap
    look before a transaction that takes one)."""
    high = Sequencer.objects.filter(pk=1).values("last_position")
    row = (
        ConsumerState.objects.filter(name=name)
        .annotate(high=Subquery(high[:1]))
        .values_list("position", "high")
        .first()
    )
    if row is None:  # new here: made at the current end of the outbox
        start_all()
        return False
    position, last = row
    return last is not None and position < last


def _handle_one(consumer: Consumer, event: EventRow, failure: Failure | None) -> bool:
    """Handle one event in a savepoint; record the failure (retry later, or park) if the
    handler raises. True when handled."""
    try:
        with transaction.atomic():
            consumer.handler(_delivered([event]))
    except Exception as exc:
        log.exception("events: %s failed on event %s (%s)", consumer.name, event.pk, event.kind)
        _failed(consumer.name, event, failure, exc)
        return False
    if failure is not None:
        failure.delete()
    return True


def _failed(name: str, event: EventRow, failure: Failure | None, exc: Exception) -> None:
    now = timezone.now()
    error = f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT]
    if failure is None:
        failure = Failure(consumer=name, event_id=event.pk, attempts=0, last_failed_at=now)
    failure.attempts += 1
    failure.error = error
    failure.last_failed_at = now
    retries_done = failure.attempts - 1
    if retries_done < len(RETRY_DELAYS):
        failure.next_try_at = now + RETRY_DELAYS[retries_done]
        failure.parked = False
    else:
        failure.next_try_at = None
        failure.parked = True
        log.error("events: %s parked event %s after %d attempts", name, event.pk, failure.attempts)
    failure.save()


# Consumers with a ``run`` under way in this process, how many of each (a consumer that
# gives way to one of them waits for the count to fall to nothing).
_running: dict[str, int] = {}
_running_changed = threading.Condition()


def _give_way(consumer: Consumer) -> None:
    """Wait, ``GIVE_WAY`` at most, while the consumer ``consumer`` gives way to runs in
    this process."""
    other = consumer.gives_way_to
    if other is None:
        return
    with _running_changed:
        _running_changed.wait_for(lambda: not _running.get(other), GIVE_WAY.total_seconds())


def run(name: str) -> int:
    """Hand ``name`` everything that waits for it; the number of events handled."""
    consumer = CONSUMERS[name]
    total = 0
    with _running_changed:
        _running[name] = _running.get(name, 0) + 1
    try:
        while _behind(name):
            _give_way(consumer)
            if (n := _run_batch(consumer)) is None:
                break
            total += n
    finally:
        with _running_changed:
            _running[name] -= 1
            _running_changed.notify_all()
    return total


def retry_due(name: str, *, now: datetime | None = None) -> int:
    """Try again the failed events of ``name`` whose wait is over; the number now handled."""
    consumer = CONSUMERS[name]
    now = now or timezone.now()
    due = Failure.objects.filter(consumer=name, parked=False, next_try_at__lte=now)
    done = 0
    for pk in list(due.order_by("next_try_at", "pk").values_list("pk", flat=True)[:500]):
        with transaction.atomic():
            rows = Failure.objects.filter(pk=pk, parked=False).select_related("event")
            if connection.features.has_select_for_update_skip_locked:
                rows = rows.select_for_update(skip_locked=True, of=("self",))
            failure = rows.first()
            if failure is None:
                continue
            done += _handle_one(consumer, EventRow.of(failure.event), failure)
    return done


def prepare() -> None:
    """Before handing events over: every consumer has its place, and what committed has
    its position."""
    start_all()
    sequence()


def dispatch(name: str) -> int:
    """What a nudge does for one consumer: sequence what committed, then hand it over."""
    prepare()
    return run(name)


# -- failures, for administrators ------------------------------------------------------


@dataclass(frozen=True)
class Retried:
    handled: int
    failed: int


def retry(ids: Iterable[int] | None = None) -> Retried:
    """Retry failed events now (``ids``: those failures; None: every parked one), each
    once more; one that fails again is parked again at once. Runs in the caller."""
    rows = Failure.objects.select_related("event")
    rows = rows.filter(pk__in=list(ids)) if ids is not None else rows.filter(parked=True)
    handled = failed = 0
    for failure in list(rows.order_by("pk")):
        consumer = CONSUMERS.get(failure.consumer)
        if consumer is None:
            failed += 1
            continue
        with transaction.atomic():
            failure.attempts = max(failure.attempts, len(RETRY_DELAYS))  # parks on failure
            if _handle_one(consumer, EventRow.of(failure.event), failure):
                handled += 1
            else:
                failed += 1
    return Retried(handled=handled, failed=failed)


def failures(*, parked: bool | None = None) -> list[Failure]:
    rows = Failure.objects.select_related("event")
    if parked is not None:
        rows = rows.filter(parked=parked)
    return list(rows.order_by("-last_failed_at", "pk"))


@dataclass(frozen=True)
class Status:
    name: str
    position: int
    waiting: int
    handled: int
    retrying: int
    parked: int


def status() -> list[Status]:
    """Each registered consumer: its position, the events after it, its failures."""
    start_all()
    sequence()
    high = high_water()
    rows = {s.name: s for s in ConsumerState.objects.filter(name__in=list(CONSUMERS))}
    out = []
    for name in sorted(CONSUMERS):
        state = rows[name]
        kinds = CONSUMERS[name].kinds
        fails = Failure.objects.filter(consumer=name)
        out.append(
            Status(
                name=name,
                position=state.position,
                waiting=Event.objects.filter(
                    position__gt=state.position, position__lte=high, kind__in=kinds
                ).count(),
                handled=state.handled,
                retrying=fails.filter(parked=False).count(),
                parked=fails.filter(parked=True).count(),
            )
        )
    return out


# -- pruning ---------------------------------------------------------------------------


def prune(*, now: datetime | None = None) -> int:
    """Delete events older than the retention window that every registered consumer has
    passed and none waits to retry; the number deleted."""
    now = now or timezone.now()
    start_all()
    floor = (
        ConsumerState.objects.filter(name__in=list(CONSUMERS)).aggregate(m=Min("position"))["m"]
        if CONSUMERS
        else high_water()
    )
    if floor is None:
        return 0
    old = Event.objects.filter(
        created_at__lt=now - retention(), position__isnull=False, position__lte=floor
    ).exclude(Exists(Failure.objects.filter(event_id=OuterRef("pk"))))
    deleted = 0
    while True:
        ids = list(old.order_by("position").values_list("pk", flat=True)[:5000])
        if not ids:
            return deleted
        deleted += Event.objects.filter(pk__in=ids).delete()[0]
