"""What the mail app does with its own events: the bodies of mail a first sync saved with
its header fields alone are parsed right after it (decision 064). A consumer of the
outbox, so it runs in the job queue, off the sync's path, and a crash hands its events
out again (``write_bodies`` only touches messages still ``processing``). The parse, and
each message's fields from it, are prepared outside the batch's transaction, so a sync
beside it waits only for the writes; the next batch's parse starts before this one is
written."""

from __future__ import annotations

from functools import partial

from crmail.events.kinds import MessageParsed
from crmail.events.registry import Delivered, Write, preparing_consumer
from crmail.mail.ingest import digest_bodies, fill_bodies, write_bodies

BATCH = 500


@preparing_consumer("bodies", ("message.parsed",), batch=BATCH, ahead=BATCH)
def handle(batch: list[Delivered], upcoming: list[Delivered]) -> Write:
    # The next batch's bodies are parsed in the worker processes while this one is written.
    return partial(write_bodies, fill_bodies(*digest_bodies(_ids(batch), ahead=_ids(upcoming))))


def _ids(items: list[Delivered]) -> list[int]:
    return [item.data.message_id for item in items if isinstance(item.data, MessageParsed)]
