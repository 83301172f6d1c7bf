"""The webhook jobs: send an endpoint's due deliveries after the commit that made them,
at each retry's time, and every minute whatever a lost job left; prune old deliveries."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from crmail.webhooks import deliver

log = logging.getLogger(__name__)


@db_task(name="webhooks.send")
def send_job(endpoint_id: int) -> None:
    """Send the endpoint's due deliveries; a full batch queues the next one."""
    if deliver.send_due(endpoint_id) >= deliver.BATCH:
        send_job(endpoint_id)


def send_soon(endpoint_ids: Iterable[int]) -> None:
    for pk in endpoint_ids:
        try:
            send_job(pk)
        except Exception:
            log.exception("webhooks: could not queue a send; the minute's sweep will")


def send_later(endpoint_id: int, at: datetime) -> None:
    """A retry at its time (the minute's sweep would find it too, only later)."""
    try:
        send_job.schedule(args=(endpoint_id,), eta=at)
    except Exception:
        log.exception("webhooks: could not schedule a retry; the minute's sweep will")


@db_periodic_task(crontab(minute="*"), name="webhooks.sweep")
def sweep() -> None:
    """Every minute: due retries and anything a lost job left; hourly, old deliveries go."""
    send_soon(deliver.endpoints_with_due())
    if timezone.now().minute == 0:
        deliver.prune()
