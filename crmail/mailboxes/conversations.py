"""The sales inbox's conversations, kept as rows (decision 028).

A conversation is a thread within one folder, or a message whose thread is not known, on
its own. ``Conversation`` sums up its locations (newest one, how many, unread, flagged) and
``ConversationLink`` lists the records its messages are linked to, so the inbox reads and
counts a folder's conversations from these small tables instead of every location and link.

Every writer names the conversations it touched by their *keys* — (folder id, thread id),
or (folder id, minus the location id) for a message with no thread — and ``refresh``
recomputes exactly those from the locations and links as they are now. One statement set
serves both a few keys (a flag set in crmail) and whole folders (``rebuild``), so what a
writer keeps is by construction what a rebuild makes. Writers:

- ``Location.save()`` / ``Location.delete()`` (two-way actions, the Sent copy);
- the sync (new locations, removals, flag changes, UIDVALIDITY re-match, vanished folders);
- ``mailboxes.receivers``: parse results (a thread assigned), links made and removed,
  records deleted (consumers of the outbox, decision 032).
"""

# SQL here is built from quoted table names and fixed text; every value is a parameter.
# ruff: noqa: S608
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from crmail.linking.models import Link
from crmail.mailboxes.models import Conversation, ConversationLink, Folder, Location

Key = tuple[int, int]
CHUNK = 400

_q = connection.ops.quote_name
LOC = _q(Location._meta.db_table)
CONV = _q(Conversation._meta.db_table)
CLINK = _q(ConversationLink._meta.db_table)
LINK = _q(Link._meta.db_table)
KEY = _q("key")


def key_of(location: Location) -> Key:
    """The key of the conversation ``location`` belongs to."""
    return (location.folder_id, location.thread_id or -location.pk)


def keys(locations: QuerySet[Location]) -> set[Key]:
    """The keys of the conversations these locations belong to."""
    return {
        (f, t if t is not None else -pk)
        for pk, f, t in locations.values_list("pk", "folder_id", "thread_id")
    }


def keys_at(folder_id: int, remote_ids: list[str]) -> set[Key]:
    """The keys of the conversations of these locations of a folder (by the server's ids;
    one statement per thousand, parameters passed as they are)."""
    out: set[Key] = set()
    for start in range(0, len(remote_ids), 1000):
        chunk = remote_ids[start : start + 1000]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, thread_id FROM {LOC} WHERE folder_id = %s "
                f"AND remote_id IN ({_marks(chunk)})",
                [folder_id, *chunk],
            )
            out |= {(folder_id, thread or -pk) for pk, thread in cursor.fetchall()}
    return out


@contextmanager
def following(locations: QuerySet[Location]) -> Iterator[None]:
    """Refresh the conversations ``locations`` are in before and after the block (for an
    UPDATE or DELETE of them: their keys may change, or they may leave)."""
    before = keys(locations)
    yield
    refresh(before | keys(locations))


def _run(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _recompute(where: str, params: list[Any], conv_where: str, conv_params: list[Any]) -> None:
    """Replace the conversations meeting ``conv_where`` (on their table) by those the
    locations meeting ``where`` (alias ``l``) make now, with their links."""
    group = "PARTITION BY l.folder_id, COALESCE(l.thread_id, -l.id)"
    with transaction.atomic():
        _run(
            f"DELETE FROM {CLINK} WHERE conversation_id IN "
            f"(SELECT id FROM {CONV} WHERE {conv_where})",
            conv_params,
        )
        _run(f"DELETE FROM {CONV} WHERE {conv_where}", conv_params)
        _run(
            f"INSERT INTO {CONV} (folder_id, {KEY}, location_id, date, messages, unread, flagged) "
            "SELECT folder_id, tk, id, date, n, u, fl FROM ("
            "SELECT l.folder_id AS folder_id, COALESCE(l.thread_id, -l.id) AS tk, l.id AS id, "
            f"l.date AS date, ROW_NUMBER() OVER ({group} ORDER BY l.date DESC, l.id DESC) AS rn, "
            f"COUNT(*) OVER ({group}) AS n, "
            f"SUM(CASE WHEN l.seen THEN 0 ELSE 1 END) OVER ({group}) AS u, "
            f"SUM(CASE WHEN l.flagged THEN 1 ELSE 0 END) OVER ({group}) AS fl "
            f"FROM {LOC} l WHERE {where}) x WHERE rn = 1",
            params,
        )
        _run(
            f"INSERT INTO {CLINK} (conversation_id, folder_id, module, record_id, unread) "
            "SELECT DISTINCT c.id, c.folder_id, k.module, k.record_id, c.unread > 0 "
            f"FROM {LOC} l JOIN {CONV} c ON c.folder_id = l.folder_id "
            f"AND c.{KEY} = COALESCE(l.thread_id, -l.id) "
            f"JOIN {LINK} k ON k.message_id = l.message_id WHERE {where}",
            params,
        )


def _marks(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def refresh(touched: Iterable[Key]) -> None:
    """Recompute the conversations with these keys from their locations and links now
    (one that has none left goes)."""
    by_folder: dict[int, list[int]] = defaultdict(list)
    for folder_id, key in set(touched):
        if folder_id is not None and key is not None:
            by_folder[folder_id].append(key)
    for folder_id, folder_keys in sorted(by_folder.items()):
        folder_keys.sort()
        for start in range(0, len(folder_keys), CHUNK):
            chunk = folder_keys[start : start + CHUNK]
            threads = [k for k in chunk if k > 0] or [0]
            lone = [-k for k in chunk if k < 0] or [0]
            # Two index searches, not a walk of the folder: the threads' locations by
            # (folder, thread), the lone ones by id (the unary plus keeps SQLite from
            # taking the (folder, thread) index for them: every unthreaded location).
            where = (
                f"(l.folder_id = %s AND l.thread_id IN ({_marks(threads)})) "
                f"OR (l.id IN ({_marks(lone)}) AND +l.folder_id = %s AND +l.thread_id IS NULL)"
            )
            _recompute(
                where,
                [folder_id, *threads, *lone, folder_id],
                f"folder_id = %s AND {KEY} IN ({_marks(chunk)})",
                [folder_id, *chunk],
            )


def refresh_folders(folder_ids: Iterable[int]) -> None:
    """Recompute every conversation of these folders."""
    ids = sorted(set(folder_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        _recompute(
            f"l.folder_id IN ({_marks(chunk)})", chunk, f"folder_id IN ({_marks(chunk)})", chunk
        )


def rebuild(mailbox_id: int | None = None) -> int:
    """Recompute the conversations of one mailbox's folders, or of all; how many there are
    now."""
    folders = Folder.objects.all()
    if mailbox_id is not None:
        folders = folders.filter(mailbox_id=mailbox_id)
    ids = list(folders.values_list("pk", flat=True))
    for folder_id in ids:
        refresh_folders([folder_id])
    return Conversation.objects.filter(folder_id__in=ids).count()


def forget_record(module: str, record_id: int) -> None:
    """A deleted record names no conversation any more."""
    ConversationLink.objects.filter(module=module, record_id=record_id).delete()
