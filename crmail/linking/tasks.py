"""Linking jobs: they take ids, load rows and call ``links``; safe to run twice."""

from __future__ import annotations

from huey.contrib.djhuey import db_task

from crmail.linking import links


@db_task(name="linking.link_past_mail")
def link_past_mail_job(job_id: int) -> None:
    """Link a record's past mail in batches (``LinkJob`` ``job_id``), resuming its cursor."""
    links.run_link_job(job_id)
