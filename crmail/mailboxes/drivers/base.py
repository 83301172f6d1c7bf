"""The contract every mail connector offers crmail: IMAP, POP3, Gmail API, Graph.

A driver speaks one protocol and returns plain dataclasses. The sync engine stores a
per-folder *cursor* (an opaque JSON-able dict the driver made) and asks for what changed
since it; ids are strings in the driver's own terms (IMAP UID, POP3 UIDL, Gmail message
id, Graph item id). Providers without folders (POP3) expose one folder, "INBOX".

What a connector can do is declared by the capabilities below, each a runtime-checkable
``typing.Protocol`` that its class names among its bases: ``Driver`` (folders, changes
since a cursor, raw bytes) is what every connector offers; the others are asked for with
``isinstance(driver, SetsFlags)`` (which also narrows the type) or, before connecting, by
``connect.can(mailbox, SetsFlags)``. Callers never ask for a protocol by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

# crmail's folder roles (SPEC F2); a server folder maps to one of these or to none (custom).
ROLES = ("inbox", "sent", "drafts", "trash", "junk", "archive", "outbox")
FLAGS = ("seen", "flagged", "answered", "deleted", "draft")


class DriverError(Exception):
    """A failure the user can act on; ``kind`` classifies it, ``str()`` says it in words."""

    kind = "error"

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        if kind:
            self.kind = kind


class AuthFailed(DriverError):
    """Wrong credentials, an app password needed, an OAuth token refused."""

    kind = "auth"


class ConnectFailed(DriverError):
    """Host unreachable, refused, timed out, or TLS failed (``kind`` says which)."""

    kind = "connect"


class Throttled(DriverError):
    """The provider asks us to slow down or stop for today (transfer or connection caps).

    ``retry_after`` is how many seconds the provider asked crmail to wait (an API's 429
    with ``Retry-After``); the sync pauses that long. None: until the day's cap resets."""

    kind = "throttled"

    def __init__(
        self, message: str, *, kind: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, kind=kind)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RemoteFolder:
    remote_id: str  # the server's name for it (IMAP: decoded from modified UTF-7)
    name: str  # what the user sees
    role: str | None  # one of ROLES when the server says (SPECIAL-USE) or by convention
    selectable: bool = True
    delimiter: str = "/"


@dataclass(frozen=True)
class RemoteMessage:
    remote_id: str
    flags: frozenset[str]  # among FLAGS; other keywords kept as they are
    raw: bytes | None  # None when only metadata was asked for
    size: int = 0
    internal_date: datetime | None = None


@dataclass
class FolderDelta:
    """What changed in one folder since a cursor."""

    cursor: dict[str, Any]  # store it once the changes are applied
    reset: bool = False  # the old cursor is void (UIDVALIDITY changed): re-match everything
    new_ids: list[str] = field(default_factory=list)  # to fetch, oldest first
    flag_changes: dict[str, frozenset[str]] = field(default_factory=dict)
    removed_ids: list[str] = field(default_factory=list)
    present_ids: list[str] | None = None  # the full id list, when the driver had to list it


# -- what every connector offers -----------------------------------------------------------


@runtime_checkable
class ListsChanges(Protocol):
    """What changed in a folder since a cursor (IMAP UIDs and MODSEQ, a POP3 listing, a
    Gmail history id, a Graph delta link): the cursor is the driver's own."""

    def changes(self, folder: RemoteFolder, cursor: dict[str, Any] | None) -> FolderDelta: ...


@runtime_checkable
class FetchesRaw(Protocol):
    """The raw bytes of messages, as the server holds them (RFC 5322)."""

    def fetch(self, folder: RemoteFolder, ids: list[str]) -> Iterator[RemoteMessage]: ...


class Driver(ListsChanges, FetchesRaw, Protocol):
    """One connected session with a mail server."""

    def close(self) -> None: ...

    def list_folders(self) -> list[RemoteFolder]: ...


# -- what some connectors offer ---------------------------------------------------------------


@runtime_checkable
class ReadsHeaders(Protocol):
    """Each message's Message-ID and size without its body: stored messages are found
    again after a reset, and ``crmail mailbox verify`` compares them."""

    def fetch_headers(self, folder: RemoteFolder, ids: list[str]) -> dict[str, tuple[str, int]]:
        """{id: (Message-ID without <>, size)}; ids gone from the server are left out."""
        ...


@runtime_checkable
class FiltersByArrival(Protocol):
    """Which messages arrived on or after a day: the import filter's since-date."""

    def ids_since(self, folder: RemoteFolder, day: date, ids: Iterable[str]) -> set[str]: ...


@runtime_checkable
class HandsOver(Protocol):
    """The server hands mail over (POP3): it lists every message each time, with the exact
    size fetching gives, and may let a message go once crmail holds it whole. A message
    gone from such a server is no removal: crmail's copy is the one that stays."""

    def acknowledge(self, folder: RemoteFolder, stored: Mapping[str, int]) -> None:
        """``stored`` ({id: size of the stored bytes}) is committed: the server may let
        those go whose size is the one it listed."""
        ...


@runtime_checkable
class SetsFlags(Protocol):
    """Read, flagged, answered… set on the server (crmail's names, ``FLAGS``)."""

    def set_flags(
        self, folder: RemoteFolder, id: str, add: Iterable[str], remove: Iterable[str]
    ) -> None: ...


@runtime_checkable
class MovesMessages(Protocol):
    """Messages filed on the server: moved to another folder, or deleted (into Trash)."""

    def move(self, folder: RemoteFolder, id: str, dest: RemoteFolder) -> str | None:
        """The message's id in ``dest`` when the server says it, else None."""
        ...

    def delete(self, folder: RemoteFolder, id: str) -> str | None:
        """Into the Trash folder (its id there when known), or gone for good from Trash."""
        ...


@runtime_checkable
class MovesMany(Protocol):
    """Several messages of one folder moved to another in one command (IMAP's UID MOVE
    with a set): the labels' first sort of a full Inbox is a few commands, not one a
    message."""

    def move_many(
        self, folder: RemoteFolder, ids: Sequence[str], dest: RemoteFolder
    ) -> dict[str, str | None]:
        """Move every message of ``ids``, all or none; {id: its id in ``dest`` when the
        server says it, else None}."""
        ...


@runtime_checkable
class Appends(Protocol):
    """A message crmail made stored in a folder (the copy of sent mail in Sent)."""

    def append(
        self,
        folder: RemoteFolder,
        raw: bytes,
        flags: Iterable[str] = ...,
        date: datetime | None = ...,
    ) -> str | None:
        """The new message's id when the server says it, else None."""
        ...


@runtime_checkable
class CreatesFolders(Protocol):
    """A folder created on the server (a Sent folder where there is none)."""

    def create_folder(self, name: str, role: str | None = ...) -> RemoteFolder: ...


@runtime_checkable
class DeletesFolders(Protocol):
    """A folder (or, on servers with labels, a label) removed from the server: the labels
    by deal state are taken off again when their owner switches them off and asks so."""

    def delete_folder(self, folder: RemoteFolder) -> None:
        """Delete ``folder`` (a label: take it off every message); one already gone is
        taken as deleted."""
        ...


@runtime_checkable
class WaitsForNews(Protocol):
    """A connection of its own waits for news in a folder (IMAP IDLE, RFC 2177): the IDLE
    watcher keeps one to each watched Inbox (``drivers/imap_idle.py``)."""

    def idle(self, folder: RemoteFolder, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True when the folder changed."""
        ...


@runtime_checkable
class AppliesLabels(Protocol):
    """Labels (Gmail): names a message carries beside its folder, any number at once.
    Servers without them get labels as folders (``CreatesFolders``, ``MovesMessages``)."""

    def list_labels(self) -> list[RemoteFolder]: ...

    def create_label(self, name: str) -> RemoteFolder: ...

    def change_labels(self, id: str, add: Iterable[str], remove: Iterable[str]) -> None:
        """Put labels (by ``remote_id``) on a message and take others off."""
        ...


@dataclass(frozen=True)
class LiveMessage:
    """One message as a live query lists it: what a record's Emails list shows."""

    remote_id: str
    sender: str  # the From header as sent
    received_at: datetime | None
    subject: str = ""
    recipients: tuple[str, ...] = ()
    thread_id: str = ""
    flags: frozenset[str] = frozenset()
    message_id: str = ""  # the Message-ID header, as sent: the same message elsewhere


@dataclass(frozen=True)
class LivePage:
    messages: list[LiveMessage]
    next_page: str | None = None  # pass it back for the next page


# The folder to name when fetching a message a live query listed: API connectors read a
# message by its id alone (``fetch(LIVE_FOLDER, [id])``).
LIVE_FOLDER = RemoteFolder(remote_id="", name="", role=None)


@runtime_checkable
class QueriesLive(Protocol):
    """Mail asked for at reading time, nothing stored (the API connectors' privacy mode):
    the messages from or to any of ``addresses``, newest first. A message listed is read
    whole with ``fetch(LIVE_FOLDER, [id])``."""

    def query(
        self, addresses: Sequence[str], *, page: str | None = ..., limit: int = ...
    ) -> LivePage: ...


@runtime_checkable
class ReadsSenders(Protocol):
    """Each message's From address and received time without its body or headers besides:
    all a mailbox that keeps no copy holds of its Inbox (``mailboxes.live_sync``). Without
    it, the From header is read from the fetched bytes in memory and they are dropped."""

    def senders(
        self, folder: RemoteFolder, ids: list[str]
    ) -> dict[str, tuple[str, datetime | None]]:
        """{id: (the From header as sent, received time)}; ids gone are left out."""
        ...


@runtime_checkable
class Sends(Protocol):
    """A message handed to the provider for delivery (SMTP, Gmail ``messages.send``, Graph
    ``sendMail``)."""

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> None: ...
