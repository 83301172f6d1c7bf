"""Writing events: inside the writer's transaction, then a nudge to the consumers."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import connections, router, transaction
from django.utils import timezone

from crmail.config.bulk import insert_rows
from crmail.events.kinds import EventData, dump
from crmail.events.models import Event


def record(*events: EventData) -> None:
    """Add ``events`` to the outbox in the current transaction; consumers are nudged after
    it commits. Nothing is recorded if the transaction rolls back."""
    record_many(events)


def record_many(events: Sequence[EventData]) -> None:
    if not events:
        return
    connection = connections[router.db_for_write(Event)]
    created = Event._meta.get_field("created_at").get_db_prep_save(timezone.now(), connection)
    as_json = connection.ops.adapt_json_value
    # One prepared INSERT for the batch (a first sync records two events per message).
    insert_rows(
        Event,
        ("kind", "data", "created_at"),
        [(e.KIND, as_json(dump(e), None), created) for e in events],
    )
    kinds = frozenset(e.KIND for e in events)
    transaction.on_commit(lambda: _nudge(kinds), using=connection.alias)


# A writer of many commits in a row (a sync's batches) gathers their nudges: each one costs
# the eager consumers' sequencing and a batch, whatever its size.
GATHER_SECONDS = 1.0


@dataclass
class _Gathered:
    since: float
    kinds: set[str] = field(default_factory=set)


_gathered: ContextVar[_Gathered | None] = ContextVar("crmail_events_gathered", default=None)


@contextmanager
def gathered() -> Iterator[None]:
    """Within the block, the nudges of its commits are gathered and given at most once
    every ``GATHER_SECONDS``, and once more when it ends (also by an exception): the
    consumers then take the events of several commits in one batch. What committed is in
    the outbox either way; only the moment consumers hear of it moves, by a second at
    most. Blocks do not nest: an inner one leaves the gathering to the outer."""
    if _gathered.get() is not None:
        yield
        return
    held = _Gathered(since=time.monotonic())
    token = _gathered.set(held)
    try:
        yield
    finally:
        _gathered.reset(token)
        if held.kinds:
            _nudge(frozenset(held.kinds))


def _nudge(kinds: frozenset[str]) -> None:
    # The consumers run as jobs; a nudge that fails to reach the queue loses nothing, as
    # the minute's dispatch finds the events anyway.
    from crmail.events import tasks

    held = _gathered.get()
    if held is not None:
        held.kinds |= kinds
        now = time.monotonic()
        if now - held.since < GATHER_SECONDS:
            return
        kinds = frozenset(held.kinds)
        held.kinds.clear()
        held.since = now
    tasks.nudge(kinds)
