"""Email reports' job (SPEC F17): every hour, the scheduled reports whose mail is due."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from crmail.reports import scheduled


@db_periodic_task(crontab(minute="7"), name="reports.mail_scheduled")
def mail_scheduled() -> None:
    scheduled.send_due()
