"""What the mail app does with its own events: the bodies of mail a first sync saved with
its header fields alone are parsed right after it (decision 064). A consumer of the
outbox, so it runs in the job queue, off the sync's path, and a crash hands its events
out again (``process_bodies`` only touches messages still ``processing``)."""

from __future__ import annotations

from crmail.events.kinds import MessageParsed
from crmail.events.registry import Delivered, consumer
from crmail.mail.ingest import process_bodies

BATCH = 500


@consumer("bodies", ("message.parsed",), batch=BATCH)
def handle(batch: list[Delivered]) -> None:
    ids = [item.data.message_id for item in batch if isinstance(item.data, MessageParsed)]
    if ids:
        process_bodies(ids)
