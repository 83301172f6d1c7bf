"""Changes made in crmail, carried to the server first (SPEC F2: IMAP is two-way).

Reading, flagging, moving or deleting a message in crmail changes it on the server, and
only then in crmail's own rows, so the server stays the truth and the next sync sees
nothing to undo. POP3 mailboxes are one-way: their copies live on their own in crmail.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.drivers.base import FLAGS, Driver, RemoteFolder
from crmail.mailboxes.models import Folder, Location, Mailbox, Protocol
from crmail.mailboxes.sync import FLAG_FIELDS
from crmail.people.models import User


class NotYours(Exception):
    """The message is not in a mailbox of the acting user (answer 404: nothing leaks)."""


def _check(user: User, location: Location) -> Mailbox:
    mailbox = location.mailbox
    if mailbox.owner_id != user.pk:
        raise NotYours("No such message in your mailboxes.")
    return mailbox


def _remote(folder: Folder) -> RemoteFolder:
    return RemoteFolder(folder.remote_id, folder.name, folder.role or None)


def _session(mailbox: Mailbox) -> Driver | None:
    """A driver for two-way changes; None for one-way mailboxes (POP3)."""
    return open_driver(mailbox) if mailbox.protocol == Protocol.IMAP else None


def change_flags(
    user: User, location: Location, add: Iterable[str] = (), remove: Iterable[str] = ()
) -> Location:
    """Set and clear flags (seen, flagged, answered, deleted, draft) on one message."""
    add, remove = set(add), set(remove)
    unknown = (add | remove) - set(FLAGS)
    if unknown:
        raise ValueError(f"Unknown flags: {', '.join(sorted(unknown))}.")
    mailbox = _check(user, location)
    driver = _session(mailbox)
    if driver is not None:
        try:
            driver.set_flags(_remote(location.folder), location.remote_id, add, remove)
        finally:
            driver.close()
    for name in FLAG_FIELDS:
        if name in add:
            setattr(location, name, True)
        elif name in remove:
            setattr(location, name, False)
    location.save(update_fields=list(FLAG_FIELDS))
    return location


def move_message(user: User, location: Location, destination: Folder) -> Location | None:
    """Move one message to another folder of the same mailbox.

    Returns its new location, or None when the server did not say the new UID (the next
    sync of the destination then finds it, by content, without fetching a duplicate row).
    """
    mailbox = _check(user, location)
    if destination.mailbox_id != mailbox.pk:
        raise NotYours("That folder is not in this message's mailbox.")
    if destination.pk == location.folder_id:
        return location
    driver = _session(mailbox)
    new_uid: str | None = None
    if driver is not None:
        try:
            new_uid = driver.move(
                _remote(location.folder), location.remote_id, _remote(destination)
            )
        finally:
            driver.close()
    with transaction.atomic():
        if driver is not None and new_uid is None:
            location.delete()
            return None
        location.folder = destination
        if new_uid is not None:
            location.remote_id, location.uid = new_uid, int(new_uid)
        location.save(update_fields=["folder", "remote_id", "uid"])
        return location


def delete_message(user: User, location: Location) -> Location | None:
    """Delete one message: into the server's Trash (its new location), or gone from Trash."""
    mailbox = _check(user, location)
    driver = _session(mailbox)
    if driver is None:  # POP3: the copy in crmail is crmail's own
        location.delete()
        return None
    try:
        new_uid = driver.delete(_remote(location.folder), location.remote_id)
        trash_remote = next((f for f in driver.list_folders() if f.role == "trash"), None)
    finally:
        driver.close()
    with transaction.atomic():
        if new_uid is None or trash_remote is None:
            location.delete()
            return None
        trash, _ = Folder.objects.get_or_create(
            mailbox=mailbox,
            remote_id=trash_remote.remote_id,
            defaults={"name": trash_remote.name, "role": "trash", "role_from_server": True},
        )
        location.folder = trash
        location.remote_id, location.uid = new_uid, int(new_uid)
        location.save(update_fields=["folder", "remote_id", "uid"])
        return location
