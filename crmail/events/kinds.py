"""The kinds of events crmail records, one dataclass each (docs/events.md lists them).

Fields are ids and plain values (JSON), never model instances: a consumer reads the rows it
needs when it handles the event, so it sees them as they are then. A field added later
gets a default, so older events still load.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, dataclass_transform


class EventData:
    KIND: ClassVar[str]


REGISTRY: dict[str, type[EventData]] = {}
_Kind = TypeVar("_Kind", bound=type[EventData])


@dataclass_transform(frozen_default=True)
def kind(name: str) -> Callable[[_Kind], _Kind]:
    """Class decorator: a frozen dataclass recorded under ``name`` (type checkers see the
    dataclass through ``dataclass_transform``)."""

    def wrap(cls: _Kind) -> _Kind:
        dataclass(frozen=True)(cls)  # made a dataclass in place
        cls.KIND = name
        if name in REGISTRY:
            raise ValueError(f"Event kind {name!r} is defined twice.")
        REGISTRY[name] = cls
        return cls

    return wrap


def dump(event: EventData) -> dict[str, Any]:
    """The event's fields as JSON values (its fields are ids and plain values)."""
    return {name: getattr(event, name) for name in _names(type(event))}


@functools.cache
def _names(cls: type[EventData]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]


def load(name: str, data: dict[str, Any]) -> EventData:
    """The dataclass of an event as stored; unknown fields (from a newer release) are
    left out, missing ones take their defaults."""
    cls = REGISTRY[name]
    names = _names(cls)
    return cls(**{k: v for k, v in data.items() if k in names})


# -- mail ------------------------------------------------------------------------------


@kind("message.received")
class MessageReceived(EventData):
    """A message was stored in a folder of a mailbox by a sync (once per new copy)."""

    message_id: int
    mailbox_id: int
    owner_id: int
    folder_id: int
    folder_role: str = ""


@kind("live_mail.received")
class LiveMailReceived(EventData):
    """A message reached the Inbox of a mailbox that keeps no copy of the mail (privacy
    mode, customer alerts on): crmail holds its Mail ID, From and received time only
    (``mailboxes.LiveMail``)."""

    live_mail_id: int
    mailbox_id: int
    owner_id: int


@kind("message.parsed")
class MessageParsed(EventData):
    """A stored message's header fields, participants and thread committed; linking starts
    here. Its body text may still be processing: ``message.processed`` follows (at once
    for mail parsed whole, after the sync for a large first sync's)."""

    message_id: int


@kind("message.processed")
class MessageProcessed(EventData):
    """A parsed message's body text, snippet and attachments committed; readers of its
    content (search, workflows, email intelligence) start here."""

    message_id: int


@kind("message.sent")
class MessageSent(EventData):
    """A user sent a message from crmail."""

    message_id: int
    sender_id: int
    mailbox_id: int | None = None
    record_module: str = ""
    record_id: int | None = None


@kind("message.linked")
class MessageLinked(EventData):
    """A message was put on a record (``reason`` as in ``linking.models.Reason``)."""

    message_id: int
    module: str
    record_id: int
    reason: str
    actor_id: int | None = None


@kind("message.unlinked")
class MessageUnlinked(EventData):
    """A message was taken off a record."""

    message_id: int
    module: str
    record_id: int
    actor_id: int | None = None


@kind("message.tagged")
class MessageTagged(EventData):
    """Tags were put on a message (``tags``: the names it did not hold before)."""

    message_id: int
    tags: list[str] = field(default_factory=list)
    actor_id: int | None = None


@kind("message.untagged")
class MessageUntagged(EventData):
    """Tags were taken off a message (``tags``: the names it held)."""

    message_id: int
    tags: list[str] = field(default_factory=list)
    actor_id: int | None = None


# -- records ---------------------------------------------------------------------------


@kind("record.created")
class RecordCreated(EventData):
    module: str
    record_id: int
    owner_id: int | None = None
    actor_id: int | None = None
    addresses: list[str] = field(default_factory=list)


@kind("record.updated")
class RecordUpdated(EventData):
    """``fields``: the names of the fields that changed; the address lists say which email
    addresses of a lead or contact came and went."""

    module: str
    record_id: int
    actor_id: int | None = None
    fields: list[str] = field(default_factory=list)
    addresses_added: list[str] = field(default_factory=list)
    addresses_removed: list[str] = field(default_factory=list)


@kind("record.deleted")
class RecordDeleted(EventData):
    module: str
    record_id: int
    actor_id: int | None = None


@kind("deal.stage_changed")
class DealStageChanged(EventData):
    deal_id: int
    from_stage_id: int | None
    to_stage_id: int
    actor_id: int | None = None


# -- tasks -----------------------------------------------------------------------------


@kind("task.created")
class TaskCreated(EventData):
    """A task was put on a record, by a user or by a workflow (no actor); ``due`` is a
    day, written YYYY-MM-DD; ``message_id`` the mail it came from."""

    task_id: int
    module: str
    record_id: int
    owner_id: int
    due: str
    actor_id: int | None = None
    message_id: int | None = None


@kind("task.updated")
class TaskUpdated(EventData):
    """``fields``: the names of the fields that changed (``done`` when it was ticked or
    unticked; ``done`` then says which)."""

    task_id: int
    module: str
    record_id: int
    actor_id: int | None = None
    fields: list[str] = field(default_factory=list)
    done: bool = False


@kind("task.deleted")
class TaskDeleted(EventData):
    """A task was deleted (the tasks of a deleted record go with it, without an event of
    their own: ``record.deleted`` says so)."""

    task_id: int
    module: str
    record_id: int
    actor_id: int | None = None


# -- mailboxes -------------------------------------------------------------------------


@kind("sync.finished")
class SyncFinished(EventData):
    """One sync of a mailbox ended (``state`` as in ``mailboxes.models.SyncState``)."""

    mailbox_id: int
    owner_id: int
    state: str
    fetched: int = 0
    error: str = ""


@kind("mailbox.needs_attention")
class MailboxNeedsAttention(EventData):
    """A mailbox stopped syncing until its owner acts (sign in again, fix a setting)."""

    mailbox_id: int
    owner_id: int
    state: str
    error: str = ""


# -- people and sharing ----------------------------------------------------------------


@kind("user.created")
class UserCreated(EventData):
    user_id: int
    actor_id: int | None = None


@kind("user.updated")
class UserUpdated(EventData):
    user_id: int
    actor_id: int | None = None
    fields: list[str] = field(default_factory=list)


@kind("sharing.changed")
class SharingChanged(EventData):
    """A user's mail sharing setting changed (mode, audience, domains, lock)."""

    user_id: int
    actor_id: int | None = None
    mode: str = ""
