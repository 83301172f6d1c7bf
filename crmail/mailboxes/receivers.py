"""What mailboxes do when mail changes: locations follow their messages' parse results in
the transaction that saves them (decision 038), and the inbox's conversations (decision
028) follow them, and links and deleted records (consumers of the outbox, decision 032)."""

# SQL here is built from quoted table names and fixed text; every value is a parameter.
# ruff: noqa: S608
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.dispatch import receiver

from crmail.events.kinds import MessageLinked, MessageUnlinked, RecordDeleted
from crmail.events.registry import Delivered, consumer
from crmail.mail.ingest import results_saved
from crmail.mail.models import Message
from crmail.mailboxes import conversations
from crmail.mailboxes.models import Location

BATCH = 1000
LOC = conversations.LOC
MSG = connection.ops.quote_name(Message._meta.db_table)


def copy_message_fields(message_ids: Sequence[int]) -> None:
    """Give the locations of these messages their thread and date (decision 028); the
    conversations they leave and join follow. Per thousand messages: one read of the
    locations' keys (locked where the database can, so no writer moves them meanwhile),
    one UPDATE returning their new keys, and the refresh of both."""
    lock = " FOR UPDATE OF l" if connection.features.has_select_for_update_of else ""
    ids = sorted(set(message_ids))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        marks = ", ".join(["%s"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT l.id, l.folder_id, l.thread_id FROM {LOC} l "
                f"WHERE l.message_id IN ({marks}){lock}",
                chunk,
            )
            before = cursor.fetchall()
            if not before:
                continue
            cursor.execute(
                f"UPDATE {LOC} SET thread_id = m.thread_id, "
                "date = COALESCE(m.date, m.first_seen_at) "
                f"FROM {MSG} m WHERE m.id = {LOC}.message_id AND {LOC}.message_id IN ({marks}) "
                f"RETURNING {LOC}.id, {LOC}.folder_id, {LOC}.thread_id",
                chunk,
            )
            after = cursor.fetchall()
        conversations.refresh({(f, t or -pk) for pk, f, t in [*before, *after]})


@receiver(results_saved, dispatch_uid="mailboxes.locations_follow_parsing")
def follow_parsing(sender: type[Message], message_ids: Sequence[int], **_: Any) -> None:
    """Parsed mail takes its place among its folder's conversations, in the transaction
    that saves the parse results (decision 038)."""
    copy_message_fields(message_ids)


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
