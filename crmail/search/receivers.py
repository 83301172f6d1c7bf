"""What search does when mail changes: processed mail (its body text saved) enters the
index (a consumer of the outbox, so it runs in the job queue, off the sync's path;
``crmail search reindex`` rebuilds the index whatever happened)."""

from __future__ import annotations

from crmail.events.kinds import MessageProcessed
from crmail.events.registry import Delivered, consumer
from crmail.search import index


@consumer("search", ("message.processed",), batch=index.BATCH)
def handle(batch: list[Delivered]) -> None:
    ids = [item.data.message_id for item in batch if isinstance(item.data, MessageProcessed)]
    if ids:
        index.index_messages(ids)
