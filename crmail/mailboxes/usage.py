"""Storage accounting (SPEC F11, decision 058): what each user's and each mailbox's mail takes.

A message counts its size as received (``blobs.Blob.size``: the raw bytes, attachments
included) once for each user who holds it — in any folder of any of their mailboxes, or
as mail they sent from crmail or received at their BCC Dropbox — and once for each
mailbox that holds it. Only bytes in the blob store count: mail kept only at the provider
(a mailbox that keeps no copy, a body that waits) counts zero. A message two colleagues
hold counts for each of them, as two mailboxes at a provider would; the organisation's
figure is the sum of its users'.

The counters (``StorageUsage``) change in the transaction that changes what is held:

- ``added(mailbox_id, owner_id, ids)`` before new locations of ``ids`` are written (a
  sync's batch: one statement),
- ``added_sent(user_id, ids)`` before rows of mail a user sent (``SentMessage.save``),
- ``removing(locations)`` around a deletion of locations,
- ``bodies_stored(ids)`` once waiting bodies are in the blob store.

Each first takes the user's lock (on PostgreSQL an advisory lock held to the end of the
transaction; SQLite lets one writer in at a time anyway), so two transactions never both
count one message as new. ``recount`` recomputes every counter from the blob store's index,
the locations and the sends: after any sync the two agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connections, router, transaction
from django.db.models import F, QuerySet

from crmail.blobs.models import Blob
from crmail.mail.models import Message
from crmail.mailboxes.models import WHOLE, Location, Mailbox, SentMessage, StorageUsage

# Message ids in one statement.
CHUNK = 500
# A deletion of more locations than this is followed by a recount of their owners rather
# than read message by message.
LARGE = 20_000
# The first key of the advisory locks (PostgreSQL), the user's id the second.
LOCK_CLASS = 58_011


@dataclass(frozen=True)
class Usage:
    """What one mailbox's (or one user's) mail takes in the blob store: its messages,
    their bytes as received, and the bytes stored (compressed where it paid)."""

    messages: int
    size: int
    stored: int = 0


def _connection() -> Any:
    return connections[router.db_for_write(StorageUsage)]


def _tables(connection: Any) -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "usage": quote(StorageUsage._meta.db_table),
        "location": quote(Location._meta.db_table),
        "mailbox": quote(Mailbox._meta.db_table),
        "sent": quote(SentMessage._meta.db_table),
        "message": quote(Message._meta.db_table),
        "blob": quote(Blob._meta.db_table),
    }


def lock(user_ids: Iterable[int]) -> None:
    """Take the storage lock of each user (in id order) until the transaction ends."""
    connection = _connection()
    if connection.vendor != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE lets one writer in at a time
    ids = sorted(set(user_ids))
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, u) FROM unnest(%s::int[]) AS u",
                [LOCK_CLASS, [i & 0x7FFFFFFF for i in ids]],
            )


def room_for(owner_id: int, quota_bytes: int) -> int:
    """Bytes of new content the organisation may still store (negative past its quota),
    with ``owner_id``'s lock taken for the rest of the transaction: one statement."""
    connection = _connection()
    t = _tables(connection)
    total = f"SELECT COALESCE(SUM(bytes), 0) FROM {t['usage']} WHERE mailbox_id = %s"  # noqa: S608
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT pg_advisory_xact_lock(%s, %s), ({total})",
                [LOCK_CLASS, owner_id & 0x7FFFFFFF, WHOLE],
            )
            used = cursor.fetchone()[1]
        else:
            cursor.execute(total, [WHOLE])
            used = cursor.fetchone()[0]
    return quota_bytes - int(used or 0)


def organisation_bytes() -> int:
    """The organisation's usage: the sum of its users'."""
    rows = StorageUsage.objects.filter(mailbox_id=WHOLE)
    return sum(rows.values_list("bytes", flat=True))


# --- adding ------------------------------------------------------------------------------


def _not_held_by_user(t: dict[str, str]) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM {t['location']} l WHERE l.message_id = m.id AND"  # noqa: S608
        f" l.mailbox_id IN (SELECT id FROM {t['mailbox']} WHERE owner_id = %s))"
        f" AND NOT EXISTS (SELECT 1 FROM {t['sent']} s WHERE s.message_id = m.id"
        " AND s.sender_id = %s)"
    )


def _not_in_mailbox(t: dict[str, str]) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM {t['location']} l WHERE l.message_id = m.id"  # noqa: S608
        " AND l.mailbox_id = %s)"
    )


def _upsert(t: dict[str, str], selects: str) -> str:
    return (
        f"INSERT INTO {t['usage']} (user_id, mailbox_id, messages, bytes)"  # noqa: S608
        f" SELECT * FROM ({selects}) AS d WHERE true"
        " ON CONFLICT (user_id, mailbox_id) DO UPDATE SET"
        f" messages = {t['usage']}.messages + excluded.messages,"
        f" bytes = {t['usage']}.bytes + excluded.bytes"
    )


def _held_sum(t: dict[str, str], marks: str, condition: str, head: str = "") -> str:
    """Messages among ``marks`` (ids) in the blob store that meet ``condition``: how many,
    and their bytes; ``head``: columns before those two (a row to upsert)."""
    return (
        f"SELECT {head}COUNT(*) AS n, COALESCE(SUM(b.size), 0) AS total FROM {t['message']} m"  # noqa: S608
        f" JOIN {t['blob']} b ON b.sha256 = m.sha256 WHERE m.id IN ({marks}) AND {condition}"
    )


def added(
    mailbox_id: int,
    owner_id: int,
    message_ids: Iterable[int],
    *,
    locked: bool = False,
    new: dict[int, int] | None = None,
) -> None:
    """Count ``message_ids`` for mailbox ``mailbox_id`` and its owner, each one that they
    did not hold yet: called in the transaction that writes the new locations, before
    writing them. One statement per 500 messages (two rows upserted); ``locked``: the
    transaction holds the owner's lock already (``room_for``).

    ``new``: those of them whose contents this transaction stored in the blob store, with
    their sizes (a sync's new mail): no one holds them yet, so they are counted as they
    are, without asking the database which of them the owner and the mailbox hold (a
    first sync's batch asked it of every message the mailbox held so far)."""
    new = new or {}
    ids = sorted(set(message_ids) - new.keys())
    if not ids and not new:
        return
    if not locked:
        lock([owner_id])
    connection = _connection()
    t = _tables(connection)
    with connection.cursor() as cursor:
        if new:
            count, size = len(new), sum(new.values())
            cursor.execute(
                _upsert(t, "SELECT %s, %s, %s, %s UNION ALL SELECT %s, %s, %s, %s"),
                [owner_id, WHOLE, count, size, owner_id, mailbox_id, count, size],
            )
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            marks = ", ".join(["%s"] * len(part))
            whole = _held_sum(t, marks, _not_held_by_user(t), "%s AS u, %s AS mb, ")
            one = _held_sum(t, marks, _not_in_mailbox(t), "%s AS u, %s AS mb, ")
            users_row = [owner_id, WHOLE, *part, owner_id, owner_id]
            mailboxs_row = [owner_id, mailbox_id, *part, mailbox_id]
            cursor.execute(_upsert(t, f"{whole} UNION ALL {one}"), [*users_row, *mailboxs_row])


def added_sent(user_id: int, message_ids: Iterable[int]) -> None:
    """Count ``message_ids`` for ``user_id`` (mail they sent from crmail or received at
    their BCC Dropbox), each one they did not hold yet: before the rows are written."""
    ids = sorted(set(message_ids))
    if not ids:
        return
    lock([user_id])
    connection = _connection()
    t = _tables(connection)
    with connection.cursor() as cursor:
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            marks = ", ".join(["%s"] * len(part))
            whole = _held_sum(t, marks, _not_held_by_user(t), "%s AS u, %s AS mb, ")
            cursor.execute(_upsert(t, whole), [user_id, WHOLE, *part, user_id, user_id])


# --- removing ----------------------------------------------------------------------------


@contextmanager
def removing(locations: QuerySet[Location]) -> Iterator[None]:
    """Around the deletion (or re-making) of ``locations``: afterwards, each message they
    held that its mailbox, or its owner, no longer holds stops counting there. One
    transaction; the owners' locks are taken before anything is read."""
    with transaction.atomic(using=router.db_for_write(StorageUsage)):
        owners = set(locations.values_list("mailbox__owner_id", flat=True).distinct())
        lock(owners)
        rows = list(
            locations.values_list("mailbox_id", "mailbox__owner_id", "message_id")
            .distinct()
            .order_by()[: LARGE + 1]
        )
        yield
        if len(rows) > LARGE:
            for owner_id in owners:
                _recount_user(owner_id)
            return
        by_place: dict[tuple[int, int], set[int]] = defaultdict(set)
        for mailbox_id, owner_id, message_id in rows:
            by_place[(owner_id, mailbox_id)].add(message_id)
            by_place[(owner_id, WHOLE)].add(message_id)
        for (owner_id, mailbox_id), ids in by_place.items():
            _subtract(owner_id, mailbox_id, sorted(ids))


def _subtract(owner_id: int, mailbox_id: int, ids: Sequence[int]) -> None:
    """Stop counting those of ``ids`` that ``mailbox_id`` (or, for ``WHOLE``, its owner) no
    longer holds."""
    connection = _connection()
    t = _tables(connection)
    with connection.cursor() as cursor:
        for start in range(0, len(ids), CHUNK):
            part = list(ids[start : start + CHUNK])
            marks = ", ".join(["%s"] * len(part))
            if mailbox_id == WHOLE:
                cursor.execute(
                    _held_sum(t, marks, _not_held_by_user(t)), [*part, owner_id, owner_id]
                )
            else:
                cursor.execute(_held_sum(t, marks, _not_in_mailbox(t)), [*part, mailbox_id])
            gone, size = cursor.fetchone()
            if gone:
                StorageUsage.objects.filter(user_id=owner_id, mailbox_id=mailbox_id).update(
                    messages=_minus("messages", int(gone)), bytes=_minus("bytes", int(size))
                )


def _minus(field: str, amount: int) -> Any:
    return F(field) - amount


# --- bodies that waited -------------------------------------------------------------------


def bodies_stored(message_ids: Iterable[int]) -> None:
    """Count messages whose bodies were waiting and are now in the blob store, for every
    user and mailbox holding them: in the transaction that records their bytes."""
    ids = sorted(set(message_ids))
    if not ids:
        return
    places = list(
        Location.objects.filter(message_id__in=ids)
        .values_list("mailbox__owner_id", "mailbox_id", "message_id")
        .distinct()
    )
    sends = list(
        SentMessage.objects.filter(message_id__in=ids).values_list("sender_id", "message_id")
    )
    lock({owner for owner, _, _ in places} | {sender for sender, _ in sends})
    sizes = dict(
        Blob.objects.filter(
            sha256__in=Message.objects.filter(pk__in=ids).values("sha256")
        ).values_list("sha256", "size")
    )
    size_of = {
        pk: sizes[digest]
        for pk, digest in Message.objects.filter(pk__in=ids).values_list("pk", "sha256")
        if digest in sizes
    }
    held: dict[tuple[int, int], set[int]] = defaultdict(set)
    for owner_id, mailbox_id, message_id in places:
        held[(owner_id, mailbox_id)].add(message_id)
        held[(owner_id, WHOLE)].add(message_id)
    for sender_id, message_id in sends:
        held[(sender_id, WHOLE)].add(message_id)
    rows = []
    for (user_id, mailbox_id), messages in held.items():
        counted = [size_of[m] for m in messages if m in size_of]
        if counted:
            rows.append((user_id, mailbox_id, len(counted), sum(counted)))
    _add_rows(rows)


def _add_rows(rows: Sequence[tuple[int, int, int, int]]) -> None:
    if not rows:
        return
    connection = _connection()
    t = _tables(connection)
    sql = (
        f"INSERT INTO {t['usage']} (user_id, mailbox_id, messages, bytes)"  # noqa: S608
        " VALUES (%s, %s, %s, %s) ON CONFLICT (user_id, mailbox_id) DO UPDATE SET"
        f" messages = {t['usage']}.messages + excluded.messages,"
        f" bytes = {t['usage']}.bytes + excluded.bytes"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


# --- from the index: `crmail storage recount`, `crmail blobs usage` ------------------------


def from_index(owner_id: int | None = None) -> tuple[dict[int, Usage], dict[int, Usage]]:
    """Every user's and every mailbox's mail in the blob store (only ``owner_id``'s with
    it), read from its index: ({user id: usage}, {mailbox id: usage}). Each message once
    per user and once per mailbox; messages whose bytes are not in the store (a body that
    waits, mail an earlier release kept in the database) are not counted."""
    connection = _connection()
    t = _tables(connection)
    mine = " AND mb.owner_id = %s" if owner_id is not None else ""
    sent_mine = " WHERE s.sender_id = %s" if owner_id is not None else ""
    held = (
        f"SELECT mb.owner_id AS who, l.message_id AS message_id FROM {t['location']} l"  # noqa: S608
        f" JOIN {t['mailbox']} mb ON mb.id = l.mailbox_id WHERE true{mine}"
        f" UNION SELECT s.sender_id, s.message_id FROM {t['sent']} s{sent_mine}"
    )
    boxes = (
        f"SELECT DISTINCT l.mailbox_id AS who, l.message_id AS message_id FROM {t['location']} l"  # noqa: S608
        f" JOIN {t['mailbox']} mb ON mb.id = l.mailbox_id WHERE true{mine}"
    )
    params = [owner_id, owner_id] if owner_id is not None else []
    out: list[dict[int, Usage]] = []
    with connection.cursor() as cursor:
        for inner, args in ((held, params), (boxes, params[:1])):
            cursor.execute(
                f"SELECT p.who, COUNT(*), SUM(b.size), SUM(b.length) FROM ({inner}) p"  # noqa: S608
                f" JOIN {t['message']} m ON m.id = p.message_id"
                f" JOIN {t['blob']} b ON b.sha256 = m.sha256 GROUP BY p.who",
                args,
            )
            out.append(
                {row[0]: Usage(int(row[1]), int(row[2]), int(row[3])) for row in cursor.fetchall()}
            )
    return out[0], out[1]


@dataclass
class Recounted:
    """What ``recount`` found: the users recounted and the counters that were off."""

    users: int = 0
    corrected: list[str] | None = None


def recount(user_ids: Iterable[int] | None = None) -> Recounted:
    """Recompute the counters of every user (or of ``user_ids``) from the blob store's
    index, the locations and the sends, each user in a transaction of their own under
    their lock; rows of mailboxes that are gone go. Says which counters were off."""
    from crmail.people.models import User

    ids = set(User.objects.values_list("pk", flat=True) if user_ids is None else user_ids)
    done = Recounted(corrected=[])
    for user_id in sorted(ids):
        with transaction.atomic(using=router.db_for_write(StorageUsage)):
            done.corrected += _recount_user(user_id)  # type: ignore[operator]
        done.users += 1
    return done


def _recount_user(user_id: int) -> list[str]:
    """Set ``user_id``'s counters to what the index says (in the caller's transaction);
    the counters that were off, in words."""
    lock([user_id])
    users, mailboxes = from_index(user_id)
    wanted = {WHOLE: users.get(user_id, Usage(0, 0))}
    for mailbox_id in Mailbox.objects.filter(owner_id=user_id).values_list("pk", flat=True):
        wanted[mailbox_id] = mailboxes.get(mailbox_id, Usage(0, 0))
    have = {row.mailbox_id: row for row in StorageUsage.objects.filter(user_id=user_id)}
    off: list[str] = []
    for mailbox_id, usage in wanted.items():
        row = have.pop(mailbox_id, None)
        before = (row.messages, row.bytes) if row is not None else (0, 0)
        if before != (usage.messages, usage.size):
            where = "in all" if mailbox_id == WHOLE else f"mailbox {mailbox_id}"
            off.append(
                f"user {user_id} {where}: {before[0]} messages, {before[1]} bytes counted;"
                f" {usage.messages} messages, {usage.size} bytes stored"
            )
        StorageUsage.objects.update_or_create(
            user_id=user_id,
            mailbox_id=mailbox_id,
            defaults={"messages": usage.messages, "bytes": usage.size},
        )
    if have:  # mailboxes that are gone
        StorageUsage.objects.filter(user_id=user_id, mailbox_id__in=list(have)).delete()
    return off


# --- reading the counters ---------------------------------------------------------------


def by_user() -> dict[int, Usage]:
    """{user id: usage} from the counters."""
    rows = StorageUsage.objects.filter(mailbox_id=WHOLE).values_list("user_id", "messages", "bytes")
    return {user_id: Usage(n, size) for user_id, n, size in rows}


def by_mailbox() -> dict[int, Usage]:
    """{mailbox id: usage} from the counters."""
    rows = StorageUsage.objects.exclude(mailbox_id=WHOLE).values_list(
        "mailbox_id", "messages", "bytes"
    )
    return {mailbox_id: Usage(n, size) for mailbox_id, n, size in rows}
