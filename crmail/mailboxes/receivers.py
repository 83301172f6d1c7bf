"""What mailboxes do when mail changes: locations follow their messages' parse results
(a consumer of the outbox, decision 032)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce

from crmail.events.kinds import MessageParsed
from crmail.events.registry import Delivered, consumer
from crmail.mail.models import Message
from crmail.mailboxes.models import Location

BATCH = 1000


def copy_message_fields(message_ids: Sequence[int]) -> None:
    """Give the locations of these messages their thread and date (decision 028), in one
    UPDATE per thousand messages."""
    message = Message.objects.filter(pk=OuterRef("message_id"))
    for start in range(0, len(message_ids), BATCH):
        Location.objects.filter(message_id__in=message_ids[start : start + BATCH]).update(
            thread_id=Subquery(message.values("thread_id")[:1]),
            date=Coalesce(
                Subquery(message.values("date")[:1]),
                Subquery(message.values("first_seen_at")[:1]),
            ),
        )


@consumer("inbox", ("message.parsed",), batch=BATCH)
def handle(batch: list[Delivered]) -> None:
    """Parsed mail takes its place among its folder's conversations."""
    copy_message_fields(
        [item.data.message_id for item in batch if isinstance(item.data, MessageParsed)]
    )
