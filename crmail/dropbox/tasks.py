"""The dropbox's jobs: file a delivery after the commit that stored it, and every minute
whatever a lost job (or a receiver that died after its commit) left unfiled; hourly,
refusals older than ``KEEP_REFUSALS`` go."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from crmail.dropbox import filing
from crmail.dropbox.models import Delivery, Refusal

log = logging.getLogger(__name__)
# Deliveries unfiled this long are filed by the sweep (their own job is late or lost).
LATE = timedelta(minutes=1)
KEEP_REFUSALS = timedelta(days=30)


@db_task(name="dropbox.file")
def file_job(delivery_id: int) -> None:
    filing.file(delivery_id)


def file_soon(delivery_ids: Iterable[int]) -> None:
    for pk in delivery_ids:
        try:
            file_job(pk)
        except Exception:
            log.exception("dropbox: could not file a delivery now; the minute's sweep will")


@db_periodic_task(crontab(minute="*"), name="dropbox.sweep")
def sweep() -> None:
    """Every minute: file deliveries left unfiled for a minute or more; hourly, forget old
    refusals (a stranger knocking all day would otherwise fill the table)."""
    now = timezone.now()
    late = Delivery.objects.filter(filed_at__isnull=True, received_at__lt=now - LATE)
    for pk in late.order_by("pk").values_list("pk", flat=True)[:500]:
        filing.file(pk)
    if now.minute == 0:
        Refusal.objects.filter(at__lt=now - KEEP_REFUSALS).delete()
