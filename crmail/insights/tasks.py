"""Email insights' jobs: a scheduled message sent at its time (a job queued for that
time), and every minute whatever is due (a queue that lost the job, a worker that was
down at the time); rows a dead process left half-sent are marked (``scheduling``)."""

from __future__ import annotations

import logging
from datetime import datetime

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from crmail.insights import scheduling

log = logging.getLogger(__name__)


@db_task(name="insights.send_scheduled")
def send_job(scheduled_id: int) -> None:
    scheduling.send_scheduled(scheduled_id)


def send_at_its_time(scheduled_id: int, at: datetime) -> None:
    """Queue the send for ``at`` (the minute's sweep sends it too, should this be lost)."""
    try:
        send_job.schedule(args=(scheduled_id,), eta=at)
    except Exception:
        log.exception("insights: could not queue a scheduled send; the minute's sweep will")


@db_periodic_task(crontab(minute="*"), name="insights.send_due")
def send_due() -> None:
    """Every minute: mark what a dead process left half-sent, then send what is due."""
    scheduling.abandon_interrupted()
    for pk in scheduling.due_ids():
        try:
            send_job(pk)
        except Exception:
            log.exception("insights: could not queue a scheduled send; the next minute will")
