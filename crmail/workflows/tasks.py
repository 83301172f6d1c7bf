"""The workflows' jobs: a run's work after the commit that made it (its actions on the
mailbox's copy), and every minute the retries that are due, anything a lost job left,
and (hourly) the pruning of old runs that did not match."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from crmail.events.dispatch import retention
from crmail.workflows import engine
from crmail.workflows.models import RunState, WorkflowRun

log = logging.getLogger(__name__)


@db_task(name="workflows.work")
def work_job(run_id: int) -> None:
    engine.work(run_id)


def work_soon(run_ids: Iterable[int]) -> None:
    for pk in run_ids:
        try:
            work_job(pk)
        except Exception:
            log.exception("workflows: could not queue a run; the minute's sweep will")


@db_periodic_task(crontab(minute="*"), name="workflows.sweep")
def sweep() -> None:
    """Every minute: the runs whose retry is due or whose job was lost; hourly, runs that
    did not match, older than the events are kept, go."""
    for pk in engine.due():
        try:
            engine.work(pk)
        except Exception:
            log.exception("workflows: run %s could not be worked on; next minute again", pk)
    if timezone.now().minute == 0:
        prune()


def prune() -> int:
    """Forget runs that did not match, older than ``CRMAIL_EVENTS_RETENTION_DAYS``: by
    then their mail is old mail, which rules never run on again."""
    old = WorkflowRun.objects.filter(
        state=RunState.NOT_MATCHED, created_at__lt=timezone.now() - retention()
    )
    return old.delete()[0]
