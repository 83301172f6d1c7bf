"""The sync of a mailbox that keeps no copy of the mail (``Mailbox.keeps_copy`` off: a Gmail
API or Graph mailbox in privacy mode).

Its mail is asked for live when a record's Emails list is read (``sharing.live``); the
sync keeps only what customer alerts and the deal-state labels need, and only while the
mailbox's customer alerts are on: for each message in the Inbox, its Mail ID, From address
and received time (``LiveMail``), written with a ``live_mail.received`` event that the
alerts consumer reads. Nothing else of the mail reaches the database: the From address is
read with the driver's ``ReadsSenders`` where it has it, else from the fetched bytes in
memory, which are then dropped. With alerts off, the rows are deleted and the Inbox's
cursor forgotten.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from django.db import transaction

from crmail.events import outbox
from crmail.events.kinds import LiveMailReceived
from crmail.mailboxes.drivers.base import Driver, ReadsSenders, RemoteFolder
from crmail.mailboxes.models import Folder, LiveMail, Mailbox

BATCH = 500  # messages asked for and written per transaction


def sender_address(header: str) -> str:
    """The address of a From header as sent (lower case; empty when there is none)."""
    if "\r" in header or "\n" in header:
        header = " ".join(header.split())
    found = [addr for _, addr in email.utils.getaddresses([header]) if "@" in addr]
    return found[0].strip().lower()[:254] if found else ""


def sync_inbox(mailbox: Mailbox, driver: Driver) -> int:
    """Bring ``mailbox``'s ``LiveMail`` rows up to its Inbox; the number of new rows."""
    if not mailbox.customer_alerts:
        forget([mailbox.pk])
        return 0
    inbox = next((f for f in driver.list_folders() if f.role == "inbox"), None)
    if inbox is None:
        return 0
    row, _ = Folder.objects.get_or_create(
        mailbox=mailbox,
        remote_id=inbox.remote_id,
        defaults={"name": inbox.name, "role": "inbox", "role_from_server": True},
    )
    delta = driver.changes(inbox, row.cursor or None)
    held = LiveMail.objects.filter(mailbox=mailbox)
    if delta.reset or delta.present_ids is not None:
        present = set(delta.present_ids or ())
        known = set(held.values_list("remote_id", flat=True))
        _delete(mailbox, known - present)
    _delete(mailbox, delta.removed_ids)
    known = set(held.values_list("remote_id", flat=True))
    todo = [i for i in dict.fromkeys(delta.new_ids) if i not in known]
    added = 0
    for start in range(0, len(todo), BATCH):
        found = _senders(driver, inbox, todo[start : start + BATCH])
        added += _write(mailbox, found)
    row.cursor = delta.cursor
    row.save(update_fields=["cursor"])
    return added


def forget(mailbox_ids: Iterable[int]) -> None:
    """Delete what crmail holds of these mailboxes' mail without a copy (with its
    notifications) and their cursors, so turning alerts on again starts from the Inbox as
    it is then."""
    ids = list(mailbox_ids)
    with transaction.atomic():
        LiveMail.objects.filter(mailbox_id__in=ids).delete()
        Folder.objects.filter(mailbox_id__in=ids).update(cursor={}, last_synced_at=None)


def _delete(mailbox: Mailbox, ids: Iterable[str]) -> None:
    ids = list(ids)
    for start in range(0, len(ids), BATCH):
        LiveMail.objects.filter(mailbox=mailbox, remote_id__in=ids[start : start + BATCH]).delete()


def _senders(
    driver: Driver, folder: RemoteFolder, ids: list[str]
) -> dict[str, tuple[str, datetime | None]]:
    if isinstance(driver, ReadsSenders):
        return driver.senders(folder, ids)
    found: dict[str, tuple[str, datetime | None]] = {}
    parser = BytesHeaderParser(policy=compat32)
    for message in driver.fetch(folder, ids):  # the bytes live in memory only
        headers = parser.parsebytes(message.raw or b"", headersonly=True)
        when = message.internal_date
        if when is None:
            try:
                when = email.utils.parsedate_to_datetime(str(headers.get("Date", "")))
            except (TypeError, ValueError):
                when = None
            if when is not None and when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
        found[message.remote_id] = (str(headers.get("From", "")), when)
    return found


def _write(mailbox: Mailbox, found: dict[str, tuple[str, datetime | None]]) -> int:
    with transaction.atomic():
        rows = LiveMail.objects.bulk_create(
            [
                LiveMail(
                    mailbox=mailbox,
                    remote_id=mid,
                    sender=sender_address(sender),
                    received_at=when,
                )
                for mid, (sender, when) in found.items()
            ],
            ignore_conflicts=True,
        )
        created = LiveMail.objects.filter(
            mailbox=mailbox, remote_id__in=[r.remote_id for r in rows]
        ).values_list("pk", flat=True)
        outbox.record_many(
            [
                LiveMailReceived(live_mail_id=pk, mailbox_id=mailbox.pk, owner_id=mailbox.owner_id)
                for pk in created
            ]
        )
    return len(rows)
