"""What email intelligence does when mail is processed (its body text saved): a consumer
of the outbox, after linking, that queues the analysis as a job of its own (ids, in
batches): the consumer itself only reads ids, so the sync and the other consumers never
wait for the analysis."""

from __future__ import annotations

import functools

from django.db import transaction

from crmail.events.kinds import MessageProcessed
from crmail.events.registry import Delivered, consumer
from crmail.intelligence import switch, tasks
from crmail.intelligence.pipeline import BATCH


@consumer(
    "intelligence",
    ("message.processed",),
    batch=500,
    after="linking",
    idle=lambda: not switch.enabled(),  # switched off: mail processed meanwhile is passed
)
def handle(batch: list[Delivered]) -> None:
    ids = sorted({i.data.message_id for i in batch if isinstance(i.data, MessageProcessed)})
    if not ids or not switch.enabled():
        return
    for start in range(0, len(ids), BATCH):
        transaction.on_commit(functools.partial(tasks.queue, ids[start : start + BATCH]))
