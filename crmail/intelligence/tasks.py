"""Email intelligence's jobs: a batch of messages analysed (queued by the outbox's
``intelligence`` consumer), and every ten minutes the messages of the last day that a
lost job left without a result."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from crmail.intelligence import pipeline, switch

log = logging.getLogger(__name__)


@db_task(name="intelligence.analyse", retries=2, retry_delay=60)
def analyse_job(message_ids: list[int]) -> None:
    pipeline.analyse_messages(message_ids)


def queue(message_ids: list[int]) -> None:
    try:
        analyse_job(message_ids)
    except Exception:
        log.exception("intelligence: could not queue an analysis; the sweep will do it")


@db_periodic_task(crontab(minute="*/10"), name="intelligence.sweep")
def sweep() -> None:
    if not switch.enabled():
        return
    ids = pipeline.missing_ids(timezone.now() - timedelta(days=1))
    if ids:
        pipeline.analyse_messages(ids)
