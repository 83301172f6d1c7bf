"""The notifications' jobs: the daily digest, looked at every ten minutes."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from crmail.notifications import digest


@db_periodic_task(crontab(minute="*/10"), name="notifications.daily_digest")
def daily_digest() -> None:
    """Send the digests that are due (each user's once a day, at the digest hour)."""
    digest.send_due()
