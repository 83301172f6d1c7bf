"""Consumers of the outbox: a name, the kinds they want, and a handler of a batch.

A handler gets the events of its kinds in position order and must be idempotent: it may
see an event again after a crash (at-least-once). It runs in the same transaction as the
consumer's new position, so effects in crmail's database happen once; effects elsewhere
(a webhook call) carry the event's id so the receiver can tell a repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from crmail.events.kinds import REGISTRY, EventData
from crmail.events.models import Event


@dataclass(frozen=True)
class Delivered:
    """One event as a handler sees it: its row (id, position, time) and its dataclass."""

    event: Event
    data: EventData


Handler = Callable[[list[Delivered]], None]


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
    wanted = frozenset(kinds)
    unknown = wanted - REGISTRY.keys()
    if unknown:
        raise ValueError(f"Unknown event kinds: {', '.join(sorted(unknown))}.")

    def register(handler: Handler) -> Handler:
        existing = CONSUMERS.get(name)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"Consumer {name!r} is registered twice.")
        CONSUMERS[name] = Consumer(
            name=name,
            kinds=wanted,
            handler=handler,
            batch=batch,
            eager=eager,
            after=after,
            idle=idle,
        )
        return handler

    return register
