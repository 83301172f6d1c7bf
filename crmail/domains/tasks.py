"""Email authentication's jobs: every five minutes, a re-check job for each pending domain
whose time has come (every 15 minutes for 48 hours after its records were shown:
``actions.RECHECK_EVERY``, ``actions.RECHECK_FOR``)."""

from __future__ import annotations

import logging

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from crmail.domains import actions
from crmail.domains.models import Domain, State

log = logging.getLogger(__name__)
BATCH = 200


@db_task(name="domains.recheck")
def recheck_job(domain_id: int) -> None:
    actions.recheck(domain_id)


@db_periodic_task(crontab(minute="*/5"), name="domains.recheck_due")
def recheck_due() -> None:
    """Queue the re-check of every pending domain that is due."""
    due = Domain.objects.filter(state=State.PENDING, next_check_at__lte=timezone.now())
    for pk in due.order_by("next_check_at").values_list("pk", flat=True)[:BATCH]:
        try:
            recheck_job(pk)
        except Exception:
            log.exception("domains: could not queue a re-check; the next round will")
