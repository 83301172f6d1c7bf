"""What the sorter knows of a mailbox's mail: (remote id, From address) per folder.

The sorter works from these pairs alone, so it serves both kinds of mailbox:
- ``StoredCopies``: a mailbox that keeps a copy (IMAP, an API mailbox with "keep a copy"):
  its ``Location`` rows and their messages' From;
- a mailbox that keeps no copy (the Gmail API's privacy mode) stores only each message's
  Mail ID, From and received time while customer alerts are on (SPEC F7, the seed's
  words); its reader of those rows plugs in here as a ``MailMetadata`` of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from crmail.mailboxes.models import Location, Mailbox


@dataclass(frozen=True)
class SortableMail:
    """One message in one folder (or under one label) on the server."""

    remote_id: str
    from_address: str  # lower case
    message_id: int | None = None  # crmail's stored message, when there is one


class MailMetadata(Protocol):
    """The messages crmail knows of in a folder of a mailbox."""

    def in_folder(self, mailbox: Mailbox, folder: str) -> list[SortableMail]:
        """The mail in the folder or label whose server name is ``folder``."""
        ...


class StoredCopies:
    """A mailbox's stored copies, as the last sync (or a move made by crmail) left them."""

    def in_folder(self, mailbox: Mailbox, folder: str) -> list[SortableMail]:
        rows = (
            Location.objects.filter(mailbox=mailbox, folder__remote_id=folder)
            .order_by("pk")
            .values_list("remote_id", "message__from_address", "message_id")
        )
        return [SortableMail(r, (a or "").lower(), m) for r, a, m in rows]


def metadata_for(mailbox: Mailbox) -> MailMetadata | None:
    """Where the sorter reads ``mailbox``'s mail from; None while crmail has no record of
    it (a mailbox that keeps no copy, until its minimal metadata is read here)."""
    if mailbox.keeps_copy:
        return StoredCopies()
    return None
