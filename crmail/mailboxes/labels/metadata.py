"""What the sorter knows of a mailbox's mail: (remote id, From address) per folder.

The sorter works from these pairs alone, so it serves both kinds of mailbox:
- ``StoredCopies``: a mailbox that keeps a copy (IMAP, an API mailbox with "keep a copy"):
  its ``Location`` rows and their messages' From;
- ``LiveMetadata``: a mailbox that keeps no copy (an API mailbox's privacy mode) stores
  only each Inbox message's Mail ID, From and received time while customer alerts are on
  (``LiveMail``; SPEC F7, the seed's words); what lies under a label is what the sorter
  moved there (``LabelMove``, replayed with its undos).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from crmail.mailboxes.models import Folder, LabelMove, LiveMail, Location, Mailbox


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


class LiveMetadata:
    """A mailbox that keeps no copy: its Inbox is the ``LiveMail`` rows its sync keeps
    (Mail ID and From alone) less what the sorter has moved out since; a label holds what
    the sorter moved there, as its log says once its moves and undos are replayed in
    order. Mail a person files under a label elsewhere is not known here (nothing of it is
    kept), so it is left where they put it."""

    def in_folder(self, mailbox: Mailbox, folder: str) -> list[SortableMail]:
        places, vacated = self._places(mailbox)
        found = [
            SortableMail(rid, sender) for (where, rid), sender in places.items() if where == folder
        ]
        inbox = Folder.objects.filter(mailbox=mailbox, role="inbox").values_list(
            "remote_id", flat=True
        )
        if folder in inbox:
            elsewhere = {rid for where, rid in places if where != folder}
            known = places.keys() | vacated
            found += [
                SortableMail(rid, sender.lower())
                for rid, sender in LiveMail.objects.filter(mailbox=mailbox)
                .order_by("pk")
                .values_list("remote_id", "sender")
                if rid not in elsewhere and (folder, rid) not in known
            ]
        return found

    @staticmethod
    def _places(mailbox: Mailbox) -> tuple[dict[tuple[str, str], str], set[tuple[str, str]]]:
        """{(folder, remote id): From} of the mail the sorter's log last put somewhere, and
        the (folder, remote id) places it left and did not come back to. A server that
        gives a moved message a new id (Outlook) leaves its Inbox row under the old id
        until the next sync: that row is no longer in the Inbox."""
        steps: list[tuple[object, int, tuple[str, str], tuple[str, str], str]] = []
        for move in LabelMove.objects.filter(mailbox=mailbox):
            moved_to = (move.target, move.new_remote_id or move.remote_id)
            steps.append(
                (move.moved_at, 0, (move.source, move.remote_id), moved_to, move.from_address)
            )
            if move.undone_at is not None:
                back = (move.source, move.restored_remote_id or move.remote_id)
                steps.append((move.undone_at, 1, moved_to, back, move.from_address))
        places: dict[tuple[str, str], str] = {}
        vacated: set[tuple[str, str]] = set()
        for _, _, left, went, sender in sorted(steps, key=lambda s: (s[0], s[1])):
            places.pop(left, None)
            vacated.add(left)
            places[went] = sender.lower()
        return places, vacated - set(places)


def metadata_for(mailbox: Mailbox) -> MailMetadata:
    """Where the sorter reads ``mailbox``'s mail from."""
    if mailbox.keeps_copy:
        return StoredCopies()
    return LiveMetadata()
