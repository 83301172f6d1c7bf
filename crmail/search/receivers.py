"""What search does when mail changes: parsed mail enters the index once it commits."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from crmail.mail.ingest import messages_parsed
from crmail.search.index import BATCH
from crmail.search.tasks import index_messages_job


@receiver(messages_parsed, dispatch_uid="search.messages_parsed")
def on_messages_parsed(sender: Any, *, message_ids: list[int], **_: Any) -> None:
    """Synced, sent or dropped mail is found by search once the job queue has indexed it:
    a job per batch, so reading and writing the documents is off the sync's path (the
    sync only enqueues). ``crmail search reindex`` repairs an index that missed any."""
    for start in range(0, len(message_ids), BATCH):
        index_messages_job(list(message_ids[start : start + BATCH]))
