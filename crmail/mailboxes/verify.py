"""``crmail mailbox verify``: compare what the server holds with what crmail stored.

Per folder, the server's ids (IMAP UIDs, POP3 UIDLs) and Message-IDs against the stored
locations, and for POP3 each message's size: the silent loss that users of other CRMs
find by hand becomes a count. Over POP3, stored messages no longer on the server (deleted
after download, or by another client) are crmail's to keep, not "extra".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from crmail.mail.models import Message
from crmail.mail.store import raw_bytes_many
from crmail.mailboxes.drivers.base import Driver, HandsOver, ReadsHeaders
from crmail.mailboxes.drivers.imap_protocol import message_id_from_header
from crmail.mailboxes.models import Location, Mailbox


@dataclass
class FolderCheck:
    folder: str
    on_server: int
    stored: int
    missing: list[str] = field(default_factory=list)  # on the server, not stored
    extra: list[str] = field(default_factory=list)  # stored, no longer on the server
    message_id_mismatches: list[str] = field(default_factory=list)
    size_mismatches: list[str] = field(default_factory=list)  # servers that hand mail over

    @property
    def agrees(self) -> bool:
        return not (
            self.missing or self.extra or self.message_id_mismatches or self.size_mismatches
        )


@dataclass
class VerifyReport:
    folders: list[FolderCheck]

    @property
    def agrees(self) -> bool:
        return all(f.agrees for f in self.folders)

    @property
    def missing(self) -> int:
        return sum(len(f.missing) for f in self.folders)

    @property
    def extra(self) -> int:
        return sum(len(f.extra) for f in self.folders)


def verify_mailbox(mailbox: Mailbox, driver: Driver) -> VerifyReport:
    """Check every synced folder of ``mailbox`` against the server, read-only."""
    remote = {f.remote_id: f for f in driver.list_folders()}
    checks: list[FolderCheck] = []
    for row in mailbox.folders.filter(sync_enabled=True, selectable=True).order_by("name"):
        rf = remote.get(row.remote_id)
        stored = {
            rid: (mid, size, pk)
            for rid, mid, size, pk in Location.objects.filter(folder=row).values_list(
                "remote_id", "message__message_id", "message__size", "message_id"
            )
        }
        if rf is None:
            checks.append(FolderCheck(row.name, 0, len(stored), extra=sorted(stored)))
            continue
        delta = driver.changes(rf, None)
        server_ids = delta.present_ids if delta.present_ids is not None else delta.new_ids
        check = FolderCheck(row.name, len(server_ids), len(stored))
        server_set = set(server_ids)
        check.missing = [i for i in server_ids if i not in stored]
        if not isinstance(driver, HandsOver):  # POP3: crmail keeps what the server let go
            check.extra = sorted(set(stored) - server_set)
        if isinstance(driver, ReadsHeaders):
            common = [i for i in server_ids if i in stored]
            server = driver.fetch_headers(rf, common) if common else {}
            check.message_id_mismatches = _message_id_mismatches(server, stored)
            if isinstance(driver, HandsOver):  # it lists the sizes fetching gives
                check.size_mismatches = [
                    i for i in common if i in server and server[i][1] != stored[i][1]
                ]
        checks.append(check)
    return VerifyReport(checks)


def _message_id_mismatches(
    server: dict[str, tuple[str, int]], stored: dict[str, tuple[str, int, int]]
) -> list[str]:
    """The ids whose Message-ID differs, both sides read by one function.

    The server's side is ``message_id_from_header`` on the header it sent. The stored
    column comes from the parser, which may read an odd header otherwise (a NUL, an
    unparseable message, bare CR line ends): where the two differ, the stored raw bytes
    are read by ``message_id_from_header`` too, and only that reading counts.
    """
    differ = [i for i, (mid, _size) in server.items() if i in stored and mid != stored[i][0]]
    mismatches: list[str] = []
    for start in range(0, len(differ), 200):
        chunk = differ[start : start + 200]
        pks = {stored[i][2] for i in chunk}
        messages = list(Message.objects.filter(pk__in=pks))
        by_pk = {m.pk: raw for m, raw in zip(messages, raw_bytes_many(messages), strict=True)}
        for i in chunk:
            raw = by_pk.get(stored[i][2], b"")
            if message_id_from_header(raw) != server[i][0]:
                mismatches.append(i)
    return mismatches


def duplicate_locations(mailbox: Mailbox) -> int:
    """Messages stored twice in one folder (should always be 0)."""
    pairs = Counter(Location.objects.filter(mailbox=mailbox).values_list("folder_id", "message_id"))
    return sum(n - 1 for n in pairs.values() if n > 1)
