"""Changes made in crmail, carried to the server first (SPEC F2: IMAP is two-way).

Reading, flagging, moving or deleting a message in crmail changes it on the server, and
only then in crmail's own rows, so the server stays the truth and the next sync sees
nothing to undo, on mailboxes whose driver sets flags and moves messages (``TwoWay``).
The others (POP3) are one-way: their copies live on their own in crmail.

The pages and the API act on a message through ``own_copy``: the viewer's own copy of it
(a ``Location`` in a mailbox they own), never a colleague's copy that sharing lets them
read. ``read``, ``flag``, ``move`` and ``delete`` turn a server's refusal into
``Refused`` (its words say why), with crmail's rows unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Protocol, runtime_checkable

from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When

from crmail.mail.models import Message
from crmail.mailboxes import conversations, usage
from crmail.mailboxes.connect import can, open_driver
from crmail.mailboxes.drivers.base import (
    FLAGS,
    Driver,
    DriverError,
    MovesMessages,
    RemoteFolder,
    SetsFlags,
)
from crmail.mailboxes.models import Folder, Location, Mailbox
from crmail.mailboxes.sync import FLAG_FIELDS
from crmail.people.models import User


class NotYours(Exception):
    """The message is not in a mailbox of the acting user (answer 404: nothing leaks)."""


class Refused(Exception):
    """The server refused the change or could not be reached; nothing changed in crmail."""


class OneWay(Refused):
    """A POP3 mailbox: crmail cannot file or delete there (nothing changed)."""


ONE_WAY = (
    "This mailbox is read over POP3, which cannot move or delete mail on the server: "
    "crmail keeps its copy. Use your mail program to file or delete it there."
)


class BadFolder(Exception):
    """The folder asked for is not one a message of this mailbox can be moved to."""


@runtime_checkable
class TwoWay(Driver, SetsFlags, MovesMessages, Protocol):
    """A driver that carries crmail's changes to the server."""


def two_way(mailbox: Mailbox) -> bool:
    """True when crmail's changes to ``mailbox``'s mail go to its server (not POP3)."""
    return can(mailbox, TwoWay)


def _check(user: User, location: Location) -> Mailbox:
    mailbox = location.mailbox
    if mailbox.owner_id != user.pk:
        raise NotYours("No such message in your mailboxes.")
    return mailbox


def _remote(folder: Folder) -> RemoteFolder:
    return RemoteFolder(folder.remote_id, folder.name, folder.role or None)


_held: ContextVar[dict[int, TwoWay] | None] = ContextVar("twoway_held", default=None)


@contextmanager
def batch() -> Iterator[None]:
    """Within it, the changes made to one mailbox share one server connection (the
    inbox's bulk bar acts on many messages), closed when the block ends."""
    held: dict[int, TwoWay] = {}
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)
        for driver in held.values():
            with suppress(DriverError, OSError):
                driver.close()


def _open(mailbox: Mailbox) -> TwoWay:
    driver = open_driver(mailbox)
    if not isinstance(driver, TwoWay):
        driver.close()
        raise OneWay(ONE_WAY)
    return driver


@contextmanager
def _session(mailbox: Mailbox) -> Iterator[TwoWay | None]:
    """A driver for two-way changes; None for one-way mailboxes (POP3). Inside ``batch``
    the mailbox's connection is reused, and dropped after any error, so the next change
    starts on a fresh one rather than reading on after something unexpected."""
    if not two_way(mailbox):
        yield None
        return
    held = _held.get()
    if held is None:
        driver = _open(mailbox)
        try:
            yield driver
        finally:
            driver.close()
        return
    shared = held.get(mailbox.pk)
    if shared is None:
        shared = held[mailbox.pk] = _open(mailbox)
    try:
        yield shared
    except BaseException:
        held.pop(mailbox.pk, None)
        with suppress(DriverError, OSError):
            shared.close()
        raise


def change_flags(
    user: User, location: Location, add: Iterable[str] = (), remove: Iterable[str] = ()
) -> Location:
    """Set and clear flags (seen, flagged, answered, deleted, draft) on one message."""
    add, remove = set(add), set(remove)
    unknown = (add | remove) - set(FLAGS)
    if unknown:
        raise ValueError(f"Unknown flags: {', '.join(sorted(unknown))}.")
    mailbox = _check(user, location)
    with _session(mailbox) as driver:
        if driver is not None:
            driver.set_flags(_remote(location.folder), location.remote_id, add, remove)
    for name in FLAG_FIELDS:
        if name in add:
            setattr(location, name, True)
        elif name in remove:
            setattr(location, name, False)
    location.save(update_fields=list(FLAG_FIELDS))
    return location


def _relocate(location: Location, folder: Folder, remote_id: str) -> Location:
    """Record the server's new place of a copy. A sync that ran meanwhile (the IDLE
    watcher syncs an Inbox at once) may have recorded it already: that row stays, ours
    goes, rather than two rows for one place."""
    existing = Location.objects.filter(folder=folder, remote_id=remote_id).first()
    if existing is not None:
        location.delete()
        return existing
    before = conversations.keys(Location.objects.filter(pk=location.pk))
    location.folder = folder
    location.remote_id = remote_id
    location.uid = int(remote_id) if remote_id.isdigit() else None
    try:
        with transaction.atomic():
            fields = {"folder": folder, "remote_id": remote_id, "uid": location.uid}
            if not Location.objects.filter(pk=location.pk).update(**fields):
                location.pk = None  # a sync dropped the old place meanwhile: a new row
                location.save()
    except IntegrityError:  # recorded by a sync between the check and the save
        ours = Location.objects.filter(pk=location.pk)
        with usage.removing(ours):
            ours.delete()
        conversations.refresh(before)
        return Location.objects.get(folder=folder, remote_id=remote_id)
    conversations.refresh(before | {conversations.key_of(location)})
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
    new_uid: str | None = None
    with _session(mailbox) as driver:
        two_way = driver is not None
        if driver is not None:
            new_uid = driver.move(
                _remote(location.folder), location.remote_id, _remote(destination)
            )
    if not two_way:
        new_uid = location.remote_id
    return record_move(location, destination, new_uid)


def record_move(location: Location, destination: Folder, new_id: str | None) -> Location | None:
    """Record in crmail that the server moved ``location`` to ``destination``, where its id
    is ``new_id``. Without one (the server did not say), the copy is forgotten: the next
    sync of the destination finds it by content, without fetching a duplicate."""
    with transaction.atomic():
        if new_id is None:
            location.delete()
            return None
        return _relocate(location, destination, new_id)


def delete_message(user: User, location: Location) -> Location | None:
    """Delete one message: into the server's Trash (its new location), or gone from Trash."""
    mailbox = _check(user, location)
    with _session(mailbox) as driver:
        if driver is None:  # POP3: the copy in crmail is crmail's own
            location.delete()
            return None
        trash_remote = next((f for f in driver.list_folders() if f.role == "trash"), None)
        new_uid = driver.delete(_remote(location.folder), location.remote_id)
    with transaction.atomic():
        if new_uid is None or trash_remote is None:
            location.delete()
            return None
        trash, _ = Folder.objects.get_or_create(
            mailbox=mailbox,
            remote_id=trash_remote.remote_id,
            defaults={"name": trash_remote.name, "role": "trash", "role_from_server": True},
        )
        return _relocate(location, trash, new_uid)


# --------------------------------------------------------------------------- own copies


def own_copies(user: User, message: Message | int) -> QuerySet[Location]:
    """``user``'s own copies of ``message``: its locations in mailboxes ``user`` owns."""
    message_id = message if isinstance(message, int) else message.pk
    return Location.objects.filter(message_id=message_id, mailbox__owner_id=user.pk)


def own_copy(user: User, message: Message | int) -> Location | None:
    """The copy the viewer's actions work on: of their copies, the first not in Trash,
    the Inbox before other folders (a message sent to oneself is in Sent and Inbox)."""
    rank = Case(
        When(folder__role="trash", then=Value(2)),
        When(folder__role="inbox", then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return (
        own_copies(user, message)
        .select_related("folder", "mailbox")
        .annotate(rank=rank)
        .order_by("rank", "pk")
        .first()
    )


def move_targets(location: Location) -> QuerySet[Folder]:
    """The folders ``location`` can be moved to: the others of its mailbox that the
    server has and that can hold mail."""
    return (
        Folder.objects.filter(
            mailbox_id=location.mailbox_id, exists_on_server=True, selectable=True
        )
        .exclude(pk=location.folder_id)
        .order_by("name", "pk")
    )


def _refused(what: str, exc: DriverError) -> Refused:
    return Refused(f"The mail server did not {what}, so nothing changed: {exc}")


def set_seen(user: User, location: Location, seen: bool) -> Location:
    """Mark read or unread, on the server first."""
    try:
        if seen:
            return change_flags(user, location, add={"seen"})
        return change_flags(user, location, remove={"seen"})
    except DriverError as exc:
        raise _refused("mark the message read" if seen else "mark it unread", exc) from None


def set_flagged(user: User, location: Location, flagged: bool) -> Location:
    """Flag or unflag, on the server first."""
    try:
        if flagged:
            return change_flags(user, location, add={"flagged"})
        return change_flags(user, location, remove={"flagged"})
    except DriverError as exc:
        raise _refused("flag the message" if flagged else "unflag it", exc) from None


def move(user: User, location: Location, folder_id: int) -> Location | None:
    """Move to folder ``folder_id`` of the copy's own mailbox, on the server first."""
    if not two_way(location.mailbox):
        raise OneWay(ONE_WAY)
    destination = Folder.objects.filter(pk=folder_id, mailbox_id=location.mailbox_id).first()
    if destination is None or not destination.exists_on_server or not destination.selectable:
        raise BadFolder("Choose a folder of this message's mailbox that can hold mail.")
    try:
        return move_message(user, location, destination)
    except DriverError as exc:
        raise _refused(f"move the message to {destination.name}", exc) from None


def delete(user: User, location: Location) -> Location | None:
    """Delete: into Trash (its new copy there), or for good from Trash (None). Not from a
    POP3 mailbox: its copy would come back with the next sync, or, when the server keeps
    nothing, crmail's would be the last one lost."""
    if not two_way(location.mailbox):
        raise OneWay(ONE_WAY)
    try:
        return delete_message(user, location)
    except DriverError as exc:
        raise _refused("delete the message", exc) from None


def wants_mark_read(user: User, message: Message | int) -> Location | None:
    """The copy to mark read when ``user`` opens ``message`` in crmail: their own unread
    copy, unless they turned marking read on opening off."""
    if not user.mark_read_on_open:
        return None
    copy = own_copy(user, message)
    return copy if copy is not None and not copy.seen else None


def mark_read_now(user_id: int, location_id: int) -> bool:
    """Mark a copy read on the server, then in crmail (the job opening a message queues).
    False when the copy is gone, already read, or the server refused (nothing changed)."""
    location = (
        Location.objects.select_related("folder", "mailbox", "mailbox__owner")
        .filter(pk=location_id, mailbox__owner_id=user_id, seen=False)
        .first()
    )
    if location is None:
        return False
    try:
        set_seen(location.mailbox.owner, location, True)
    except Refused:
        return False
    return True
