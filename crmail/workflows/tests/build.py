"""Mail for workflow tests: real messages (bytes, stored and parsed by crmail), put in a
mailbox the way a sync puts them (a ``Location`` and its ``message.received`` event)."""

from __future__ import annotations

import itertools
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.db import transaction
from django.utils import timezone

from crmail.events import outbox
from crmail.events.kinds import MessageReceived
from crmail.mail.ingest import parse_stored
from crmail.mail.models import Message
from crmail.mail.store import store_raw
from crmail.mailboxes.models import Folder, Location, Mailbox
from crmail.people.models import User

_seq = itertools.count(1)


def raw(
    sender: str,
    to: str = "rep@crmail.test",
    *,
    subject: str = "Hello",
    body: str = "Hello,\n\nhow are you?\n",
    cc: str = "",
    headers: dict[str, str] | None = None,
    attachment: bytes | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = make_msgid(f"wf{next(_seq)}", "customer.test")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="a.pdf")
    return msg.as_bytes()


def mailbox(owner: User, email: str = "") -> Mailbox:
    box = Mailbox.objects.create(owner=owner, email=email or owner.email, host="127.0.0.1")
    for remote, name, role in (
        ("INBOX", "Inbox", "inbox"),
        ("Sent", "Sent", "sent"),
        ("Archive", "Archive", "archive"),
        ("Trash", "Trash", "trash"),
    ):
        Folder.objects.create(mailbox=box, remote_id=remote, name=name, role=role)
    return box


def stored(data: bytes) -> Message:
    """``data`` stored and parsed (a ``message.parsed`` event with it)."""
    with transaction.atomic():
        message = store_raw(data)
    parse_stored([message])
    message.refresh_from_db()
    return message


def place(message: Message, box: Mailbox, role: str = "inbox") -> Location:
    """A copy of ``message`` in the folder of ``box`` with ``role``, as a sync stores it."""
    folder = Folder.objects.get(mailbox=box, role=role)
    with transaction.atomic():
        location = Location.objects.create(
            mailbox=box,
            folder=folder,
            message=message,
            remote_id=str(next(_seq)),
            uid=next(_seq),
        )
        outbox.record(
            MessageReceived(
                message_id=message.pk,
                mailbox_id=box.pk,
                owner_id=box.owner_id,
                folder_id=folder.pk,
                folder_role=role,
            )
        )
    return location


def deliver(box: Mailbox, data: bytes, role: str = "inbox") -> Message:
    """New mail as a sync brings it: stored with its copy, then parsed."""
    with transaction.atomic():
        message = store_raw(data)
        place(message, box, role)
    parse_stored([message])
    message.refresh_from_db()
    return message
