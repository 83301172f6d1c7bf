"""Read side of mailboxes: the mail that is a user's own."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce

from crmail.blobs.models import Blob
from crmail.mail.models import Message
from crmail.mailboxes.models import Location, SentMessage
from crmail.people.models import User


def user_mail(user: User) -> QuerySet[Message]:
    """The messages of ``user``'s mail, each once, oldest first: those with a location in a
    mailbox the user owns (any folder, active mailbox or not) and those the user sent from
    crmail. Loads only what the mbox writer needs (the raw bytes come apart). This is what
    a departing user's backup holds (SPEC F12)."""
    located = Location.objects.filter(mailbox__owner_id=user.pk).values("message_id")
    sent = SentMessage.objects.filter(sender_id=user.pk).values("message_id")
    return (
        Message.objects.filter(Q(pk__in=located) | Q(pk__in=sent))
        .annotate(when=Coalesce(F("date"), F("first_seen_at")))
        .only("pk", "size", "date", "first_seen_at", "from_address")
        .order_by("when", "pk")
    )


@dataclass(frozen=True)
class Usage:
    """What one mailbox's (or one user's) mail takes in the blob store: its messages,
    their bytes as received, and the bytes stored (compressed where it paid)."""

    messages: int
    size: int
    stored: int


def storage_by_mailbox() -> dict[int, Usage]:
    """Each mailbox's mail in the blob store, from its index (each message once per
    mailbox, however many of its folders hold it)."""
    return _usage("mailbox_id")


def storage_by_user() -> dict[int, Usage]:
    """Each user's mail in the blob store, from its index (each message once per user,
    however many of their mailboxes and folders hold it)."""
    return _usage("mailbox__owner_id")


def _usage(key: str) -> dict[int, Usage]:
    """Grouped by ``key`` of a location (``mailbox_id`` or ``mailbox__owner_id``), each
    message once per group; messages whose bytes an earlier release kept in the database
    (not moved into the store yet) are not counted."""
    pairs = Location.objects.values(key, "message_id").distinct().order_by()
    inner, params = pairs.query.sql_with_params()
    column = connection.ops.quote_name(key)  # the inner query's name for it
    sql = (
        f"SELECT p.{column}, COUNT(*), SUM(b.size), SUM(b.length) FROM ({inner}) p"  # noqa: S608
        f" JOIN {Message._meta.db_table} m ON m.id = p.message_id"
        f" JOIN {Blob._meta.db_table} b ON b.sha256 = m.sha256 GROUP BY p.{column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: Usage(int(row[1]), int(row[2]), int(row[3])) for row in cursor.fetchall()}
