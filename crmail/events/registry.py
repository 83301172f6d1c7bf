"""Consumers of the outbox: a name, the kinds they want, and a handler of a batch.

A handler gets the events of its kinds in position order and must be idempotent: it may
see an event again after a crash (at-least-once). It runs in the same transaction as the
consumer's new position, so effects in crmail's database happen once; effects elsewhere
(a webhook call) carry the event's id so the receiver can tell a repeat.

A consumer whose work is mostly reading and computing (the bodies' parse, the search
index's words) is registered with ``preparing_consumer``: its function reads and computes
before the batch's transaction and returns what writes inside it. On SQLite a transaction
holds the database's one write lock from its start, so a sync writing beside it waits only
for the write, not for the parse. What was read may change before the write: the write
checks again what it writes over. Registered with ``ahead``, it is also shown the events
known to come after its batch: it may start on them (the bodies' parse, in worker
processes) while this batch is written; they come again as a batch of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crmail.events.kinds import REGISTRY, EventData
from crmail.events.models import Event


@dataclass(frozen=True, slots=True)
class EventRow:
    """An outbox event's row as consumers read it: its fields, without a model instance
    (a first sync's consumers read tens of thousands: 6,094 events took 24 ms read so,
    41 ms as ``Event`` instances)."""

    pk: int
    kind: str
    data: dict[str, Any]
    created_at: datetime
    position: int | None

    @classmethod
    def of(cls, event: Event) -> EventRow:
        return cls(
            pk=event.pk,
            kind=event.kind,
            data=event.data,
            created_at=event.created_at,
            position=event.position,
        )


@dataclass(frozen=True)
class Delivered:
    """One event as a handler sees it: its row (id, position, time) and its dataclass."""

    event: EventRow
    data: EventData


Handler = Callable[[list[Delivered]], None]
# What a preparing consumer's function returns: the batch's writes, run in its transaction.
Write = Callable[[], object]
# A preparing consumer's function: given its batch and the events known to follow it (at
# most ``ahead`` of them), the batch's writes.
Preparer = Callable[[list[Delivered], list[Delivered]], Write]


@dataclass(frozen=True)
class Consumer:
    name: str
    kinds: frozenset[str]
    handler: Handler
    batch: int = 200
    eager: bool = False
    after: str | None = None
    # True when the handler would do nothing with any batch (no webhook endpoint, no
    # rule): its events are passed in the same batches without being read.
    idle: Callable[[], bool] | None = None
    # A preparing consumer's function (``handler`` runs it and its write in one go), and
    # how many events after its batch it is shown.
    prepare: Preparer | None = None
    ahead: int = 0
    # A consumer whose batches wait while that one runs in the same process (a while at
    # most, ``dispatch.GIVE_WAY``): what users wait for first goes first.
    gives_way_to: str | None = None


CONSUMERS: dict[str, Consumer] = {}


def consumer(
    name: str,
    kinds: Iterable[str],
    *,
    batch: int = 200,
    eager: bool = False,
    after: str | None = None,
    idle: Callable[[], bool] | None = None,
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as consumer ``name`` of ``kinds`` (from an app's ``ready``).

    An ``eager`` consumer runs in the committing process right after the commit (what the
    user does next reads its effects: a new contact's past mail on its page), and in the
    job queue only if that fails; the others run in the job queue.

    A consumer ``after`` another reads only the events that one has passed: it sees what
    the other did with them (workflows run on mail once linking has linked it).

    ``idle`` says, in the batch's transaction, that the handler would return at once
    whatever the events (nothing subscribes): the batch is then passed without reading
    its rows (a first sync's tens of thousands of events, for no webhook endpoint)."""
    wanted = _known(kinds)

    def register(handler: Handler) -> Handler:
        new = Consumer(name, wanted, handler, batch=batch, eager=eager, after=after, idle=idle)
        _register(new, handler)
        return handler

    return register


def preparing_consumer(
    name: str,
    kinds: Iterable[str],
    *,
    batch: int = 200,
    ahead: int = 0,
    gives_way_to: str | None = None,
) -> Callable[[Preparer], Preparer]:
    """Register ``prepare`` as consumer ``name`` of ``kinds``: it reads and computes what a
    batch needs outside the batch's transaction and returns the writes, which run inside it
    (see the module's docstring). Its reads may be a little old by the write: the write
    checks what it writes over, and a batch another dispatcher took meanwhile is prepared
    again. ``prepare`` is also given up to ``ahead`` of the events that follow the batch,
    as far as they are known (none when a batch is handled whole or one by one): a hint
    only, what it starts on them must be right whatever comes of them.

    A consumer that ``gives_way_to`` another starts none of its batches while that one
    runs in the same process, for a while at most (``dispatch.GIVE_WAY``): on a machine
    of few cores the two would otherwise share one interpreter lock and the database's
    write lock, and the one users wait for (the bodies of new mail) would take twice as
    long. In another process, or when nothing else runs that one, it does not wait."""
    wanted = _known(kinds)

    def register(prepare: Preparer) -> Preparer:
        def handle(items: list[Delivered]) -> None:
            prepare(items, [])()

        new = Consumer(
            name,
            wanted,
            handle,
            batch=batch,
            prepare=prepare,
            ahead=ahead,
            gives_way_to=gives_way_to,
        )
        _register(new, prepare)
        return prepare

    return register


def _known(kinds: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(kinds)
    unknown = wanted - REGISTRY.keys()
    if unknown:
        raise ValueError(f"Unknown event kinds: {', '.join(sorted(unknown))}.")
    return wanted


def _register(new: Consumer, function: Callable[..., object]) -> None:
    existing = CONSUMERS.get(new.name)
    if existing is not None and (existing.prepare or existing.handler) is not function:
        raise ValueError(f"Consumer {new.name!r} is registered twice.")
    CONSUMERS[new.name] = new
