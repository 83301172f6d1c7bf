"""What mailboxes do when mail changes (consumers of the outbox, decision 032): locations
follow their messages' parse results, and the inbox's conversations (decision 028) follow
parsing, links and deleted records."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce

from crmail.events.kinds import MessageLinked, MessageParsed, MessageUnlinked, RecordDeleted
from crmail.events.registry import Delivered, consumer
from crmail.mail.models import Message
from crmail.mailboxes import conversations
from crmail.mailboxes.models import Location

BATCH = 1000


def copy_message_fields(message_ids: Sequence[int]) -> None:
    """Give the locations of these messages their thread and date (decision 028), in one
    UPDATE per thousand messages; their conversations follow."""
    message = Message.objects.filter(pk=OuterRef("message_id"))
    for start in range(0, len(message_ids), BATCH):
        rows = Location.objects.filter(message_id__in=message_ids[start : start + BATCH])
        with conversations.following(rows):
            rows.update(
                thread_id=Subquery(message.values("thread_id")[:1]),
                date=Coalesce(
                    Subquery(message.values("date")[:1]),
                    Subquery(message.values("first_seen_at")[:1]),
                ),
            )


@consumer("inbox", ("message.parsed",), batch=BATCH, eager=True)
def handle(batch: list[Delivered]) -> None:
    """Parsed mail takes its place among its folder's conversations."""
    copy_message_fields(
        [item.data.message_id for item in batch if isinstance(item.data, MessageParsed)]
    )


@consumer("inbox-links", ("message.linked", "message.unlinked", "record.deleted"), batch=BATCH)
def follow_links(batch: list[Delivered]) -> None:
    """A conversation's records follow its messages' links (a deleted record's links go
    without an event of their own)."""
    message_ids = sorted(
        {
            item.data.message_id
            for item in batch
            if isinstance(item.data, MessageLinked | MessageUnlinked)
        }
    )
    touched: set[conversations.Key] = set()
    for start in range(0, len(message_ids), BATCH):
        chunk = message_ids[start : start + BATCH]
        touched |= conversations.keys(Location.objects.filter(message_id__in=chunk))
    conversations.refresh(touched)
    for item in batch:
        if isinstance(item.data, RecordDeleted):
            # Linking's own consumer deletes the record's links, in either order with this
            # one: its conversations lose the record here, whatever the links say yet.
            conversations.forget_record(item.data.module, item.data.record_id)
