"""The interface every mail driver offers the sync engine: IMAP, POP3, Gmail API, Graph.

A driver speaks one protocol and returns plain dataclasses. The sync engine stores a
per-folder *cursor* (an opaque JSON-able dict the driver made) and asks for what changed
since it; ids are strings in the driver's own terms (IMAP UID, POP3 UIDL, Gmail message
id, Graph item id). Providers without folders (POP3) expose one folder, "INBOX".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

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
    """The provider asks us to slow down or stop for today (transfer or connection caps)."""

    kind = "throttled"


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


class Driver(Protocol):
    """One connected session with a mail server."""

    def close(self) -> None: ...

    def list_folders(self) -> list[RemoteFolder]: ...

    def changes(self, folder: RemoteFolder, cursor: dict[str, Any] | None) -> FolderDelta: ...

    def fetch(self, folder: RemoteFolder, ids: list[str]) -> Iterator[RemoteMessage]: ...
