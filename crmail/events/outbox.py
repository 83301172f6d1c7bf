"""Writing events: inside the writer's transaction, then a nudge to the consumers."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from crmail.events.kinds import EventData, dump
from crmail.events.models import Event


def record(*events: EventData) -> None:
    """Add ``events`` to the outbox in the current transaction; consumers are nudged after
    it commits. Nothing is recorded if the transaction rolls back."""
    record_many(events)


def record_many(events: Sequence[EventData]) -> None:
    if not events:
        return
    Event.objects.bulk_create([Event(kind=e.KIND, data=dump(e)) for e in events])
    transaction.on_commit(_nudge)


def _nudge() -> None:
    # The consumers run as jobs; a nudge that fails to reach the queue loses nothing, as
    # the minute's dispatch finds the events anyway.
    from crmail.events import tasks

    tasks.nudge()
