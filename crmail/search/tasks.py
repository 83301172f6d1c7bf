"""Search jobs: they take message ids and write their documents; safe to run twice."""

from __future__ import annotations

from huey.contrib.djhuey import db_task

from crmail.search import index


@db_task(name="search.index_messages", retries=3, retry_delay=30)
def index_messages_job(message_ids: list[int]) -> None:
    """Write the search documents of ``message_ids`` (rewriting any that exist)."""
    index.index_messages(message_ids)
