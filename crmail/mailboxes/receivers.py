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
    as sent. Returns the ids marked. One query when none of the mail was sent from crmail.
    """
    keys = set(
        Message.objects.filter(pk__in=message_ids)
        .exclude(message_id="")
        .values_list("message_id", flat=True)
    )
    if not keys:
        return []
    sends = list(
        SentMessage.objects.filter(message__message_id__in=keys).values_list(
            "message_id", "message__message_id", "sender_id"
        )
    )
    if not sends:
        return []
    sent_ids = {o for o, _, _ in sends}
    copies = Message.objects.filter(
        message_id__in={k for _, k, _ in sends}, copy_of__isnull=True
    ).exclude(pk__in=sent_ids)
    owners: dict[int, set[int]] = {}
    for pk, owner in Location.objects.filter(message__in=copies).values_list(
        "message_id", "mailbox__owner_id"
    ):
        owners.setdefault(pk, set()).add(owner)
    marked: list[int] = []
    for pk, key in copies.filter(pk__in=owners).values_list("pk", "message_id"):
        original = next((o for o, k, u in sends if k == key and u in owners[pk]), None)
        if original is not None:
            Message.objects.filter(pk=pk).update(copy_of_id=original)
            marked.append(pk)
    unlink_copies(marked)
    return marked


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
