"""The outbox's jobs: a nudge per consumer after a commit, and the minute's sweep."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from crmail.events import dispatch
from crmail.events.registry import CONSUMERS

log = logging.getLogger(__name__)


@db_task(name="events.dispatch")
def dispatch_job(name: str) -> None:
    """Sequence what committed and hand it to consumer ``name``; then the consumers that
    read after it (``after=name``) get a job, as it may have passed what they wait for."""
    if name in CONSUMERS:
        dispatch.dispatch(name)
        for other in list(CONSUMERS.values()):
            if other.after == name:
                dispatch_job(other.name)


def nudge(kinds: Iterable[str] | None = None) -> None:
    """After a commit that recorded events of ``kinds`` (None: any kind): each consumer of
    one of them runs, an eager one here and now, any other as a job (each apart, so a slow
    one, like the search index, does not hold up another, like alerts). An eager consumer
    that fails here gets a job too. A consumer of none of these kinds has nothing new, and
    is left alone."""
    recorded = None if kinds is None else frozenset(kinds)
    wanting = [c for c in list(CONSUMERS.values()) if recorded is None or c.kinds & recorded]
    # A consumer reads only what the one it comes ``after`` has passed: that one passes
    # these positions first, even when none of its kinds is among them.
    names = {c.name for c in wanting}
    before = [CONSUMERS[c.after] for c in wanting if c.after in CONSUMERS and c.after not in names]
    wanting = list({c.name: c for c in [*before, *wanting]}.values())
    eager = [c.name for c in wanting if c.eager]
    queued = [c.name for c in wanting if not c.eager]
    if eager:
        try:
            dispatch.prepare()
        except Exception:
            log.exception("events: sequencing after the commit failed; queued")
            queued += eager
            eager = []
    for name in eager:
        try:
            dispatch.run(name)
        except Exception:
            log.exception("events: %s failed after the commit; queued", name)
            queued.append(name)
    for name in queued:
        try:
            dispatch_job(name)
        except Exception:
            log.exception("events: could not queue %s; the minute's sweep will", name)


@db_periodic_task(crontab(minute="*"), name="events.sweep")
def sweep() -> None:
    """Every minute: what a lost nudge left, the retries that are due, and (hourly) the
    pruning of old events."""
    dispatch.prepare()
    for name in list(CONSUMERS):
        try:
            dispatch.retry_due(name)
            dispatch.run(name)
        except Exception:
            log.exception("events: the sweep of %s failed; next minute again", name)
    if timezone.now().minute == 0:
        dispatch.prune()
