"""Building mail for sharing tests: messages, their places in mailboxes, links, sends.

Rows are written directly (no parsing): these tests are about who sees what, and the
linking and parsing steps have tests of their own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from crmail.crm.models import Record
from crmail.linking.models import Link
from crmail.mail.models import Message, Participant
from crmail.mailboxes.models import Folder, Location, Mailbox, SentMessage
from crmail.people.models import User

_seq = itertools.count(1)
START = datetime(2026, 6, 1, tzinfo=UTC)


def mailbox(
    owner: User, email: str = "", *, active: bool = True, protocol: str = "imap"
) -> Mailbox:
    box = Mailbox.objects.create(
        owner=owner, email=email or owner.email, is_active=active, protocol=protocol
    )
    Folder.objects.create(mailbox=box, remote_id="INBOX", name="Inbox", role="inbox")
    return box


def inbox(owner: User) -> Mailbox:
    """The owner's active mailbox, connected on first use."""
    return owner.mailboxes.filter(is_active=True).first() or mailbox(owner)


def message(
    sender: str,
    to: Iterable[str] = (),
    cc: Iterable[str] = (),
    *,
    on: Iterable[Record] = (),
    in_mailboxes: Iterable[Mailbox | User] = (),
    sent_by: User | None = None,
) -> Message:
    """A message from ``sender`` to ``to``/``cc``, linked (by hand) to the records ``on``,
    lying in the given mailboxes (a user: their active mailbox), and sent from crmail by
    ``sent_by`` when given."""
    n = next(_seq)
    date = START + timedelta(minutes=n)
    msg = Message.objects.create(
        sha256=f"{n:064x}", size=0, parse_state="parsed", date=date, subject=f"m{n}"
    )
    roles: Sequence[tuple[str, Iterable[str]]] = (("from", [sender]), ("to", to), ("cc", cc))
    Participant.objects.bulk_create(
        [
            Participant(message=msg, role=role, address=address.lower(), position=i)
            for i, (role, address) in enumerate(
                (role, a) for role, addresses in roles for a in addresses
            )
        ]
    )
    for record in on:
        link(msg, record)
    for box in in_mailboxes:
        place(msg, box)
    if sent_by is not None:
        SentMessage.objects.create(message=msg, sender=sent_by, from_address=sender)
    return msg


def link(msg: Message, record: Record) -> Link:
    return Link.objects.create(
        message=msg,
        module=type(record).MODULE,
        record_id=record.pk,
        reason="manual",
        date=msg.date,
        created_at=msg.date,
    )


def place(msg: Message, box: Mailbox | User) -> Location:
    if isinstance(box, User):
        box = inbox(box)
    folder = box.folders.first() or Folder.objects.create(
        mailbox=box, remote_id="INBOX", name="Inbox"
    )
    return Location.objects.create(
        mailbox=box, folder=folder, message=msg, remote_id=str(next(_seq))
    )
