"""The outbox's jobs: a nudge per consumer after a commit, and the minute's sweep."""

from __future__ import annotations

import logging

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


def nudge() -> None:
    """After a commit that recorded events: eager consumers run here and now; every other
    consumer gets a job (each apart, so a slow one, like the search index, does not hold
    up another, like alerts). An eager consumer that fails here gets a job too."""
    queued = []
    for consumer in list(CONSUMERS.values()):
        if consumer.eager:
            try:
                dispatch.dispatch(consumer.name)
                continue
            except Exception:
                log.exception("events: %s failed after the commit; queued", consumer.name)
        queued.append(consumer.name)
    for name in queued:
        try:
            dispatch_job(name)
        except Exception:
            log.exception("events: could not queue %s; the minute's sweep will", name)


@db_periodic_task(crontab(minute="*"), name="events.sweep")
def sweep() -> None:
    """Every minute: what a lost nudge left, the retries that are due, and (hourly) the
    pruning of old events."""
    dispatch.start_all()
    dispatch.sequence()
    for name in list(CONSUMERS):
        try:
            dispatch.retry_due(name)
            dispatch.run(name)
        except Exception:
            log.exception("events: the sweep of %s failed; next minute again", name)
    if timezone.now().minute == 0:
        dispatch.prune()
