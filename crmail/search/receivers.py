"""What search does when mail changes: processed mail (its body text saved) enters the
index (a consumer of the outbox, so it runs in the job queue, off the sync's path;
``crmail search reindex`` rebuilds the index whatever happened). Its words are read and
cut outside the batch's transaction, so a sync beside it waits only for the write; the
next batch's bodies are cut in worker processes meanwhile (``index.cut_ahead``). It
gives way to the bodies: while they are parsed in this process its batches wait (a
message shows "processing" until its body is saved; the index may follow a moment
later)."""

from __future__ import annotations

from functools import partial

from crmail.events.kinds import MessageProcessed
from crmail.events.registry import Delivered, Write, preparing_consumer
from crmail.search import index


@preparing_consumer(
    "search", ("message.processed",), batch=index.BATCH, ahead=index.BATCH, gives_way_to="bodies"
)
def handle(batch: list[Delivered], upcoming: list[Delivered]) -> Write:
    documents = index.read_documents(_ids(batch))
    index.cut_ahead(_ids(upcoming))  # cut while these are written
    return partial(index.write_documents, documents)


def _ids(items: list[Delivered]) -> list[int]:
    return [item.data.message_id for item in items if isinstance(item.data, MessageProcessed)]
