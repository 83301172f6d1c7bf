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
from crmail.linking.links import unlink_copies
from crmail.mail.ingest import results_saved
from crmail.mail.models import Message
from crmail.mailboxes import conversations
from crmail.mailboxes.models import Location, SentMessage

BATCH = 1000
LOC = conversations.LOC
MSG = connection.ops.quote_name(Message._meta.db_table)
SENT = connection.ops.quote_name(SentMessage._meta.db_table)


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
    that saves the parse results (decision 038), and a mailbox's own copy of mail its
    owner sent through crmail is known as such."""
    copy_message_fields(message_ids)
    mark_copies(message_ids)


def mark_copies(message_ids: Sequence[int]) -> list[int]:
    """Mark the messages that are a mailbox's own copy of mail its owner sent through
    crmail or its BCC Dropbox (decision 056): the same Message-ID as the sent message,
    other bytes (the provider's Sent copy, a copy to oneself), in a mailbox of the sender.
    Either may be parsed first. Their address links go: the record shows the mail once,
    as sent. Returns the ids marked. One statement per thousand messages when none of them
    shares its Message-ID with mail sent from crmail (a sync's usual case).
    """
    pairs: list[tuple[int, int, int]] = []  # (copy, original, its sender)
    ids = sorted(set(message_ids))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        marks = ", ".join(["%s"] * len(chunk))
        # This message is a copy of a sent one, or a sent one whose copy came first.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT m.id, o.id, s.sender_id FROM {MSG} m "
                f"JOIN {MSG} o ON o.message_id = m.message_id AND o.id <> m.id "
                f"JOIN {SENT} s ON s.message_id = o.id "
                f"WHERE m.id IN ({marks}) AND m.message_id <> '' "
                "UNION "
                f"SELECT o.id, m.id, s.sender_id FROM {MSG} m "
                f"JOIN {SENT} s ON s.message_id = m.id "
                f"JOIN {MSG} o ON o.message_id = m.message_id AND o.id <> m.id "
                f"WHERE m.id IN ({marks}) AND m.message_id <> ''",
                chunk + chunk,
            )
            pairs += cursor.fetchall()
    if not pairs:
        return []
    sent = set(
        SentMessage.objects.filter(message_id__in={c for c, _, _ in pairs}).values_list(
            "message_id", flat=True
        )
    )
    unmarked = set(
        Message.objects.filter(pk__in={c for c, _, _ in pairs}, copy_of__isnull=True).values_list(
            "pk", flat=True
        )
    )
    owners: dict[int, set[int]] = {}
    for pk, owner in Location.objects.filter(message_id__in=unmarked).values_list(
        "message_id", "mailbox__owner_id"
    ):
        owners.setdefault(pk, set()).add(owner)
    marked: dict[int, int] = {}
    for copy, original, sender in sorted(pairs):
        if copy in unmarked and copy not in sent and sender in owners.get(copy, ()):
            marked.setdefault(copy, original)
    for copy, original in marked.items():
        Message.objects.filter(pk=copy).update(copy_of_id=original)
    unlink_copies(list(marked))
    return list(marked)


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
