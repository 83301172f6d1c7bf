"""Writing events: inside the writer's transaction, then a nudge to the consumers."""

from __future__ import annotations

from collections.abc import Sequence

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


def _nudge(kinds: frozenset[str]) -> None:
    # The consumers run as jobs; a nudge that fails to reach the queue loses nothing, as
    # the minute's dispatch finds the events anyway.
    from crmail.events import tasks

    tasks.nudge(kinds)
