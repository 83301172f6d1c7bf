"""``crmail mailbox verify``: compare what the server holds with what crmail stored.

Per folder, the server's ids (IMAP UIDs, POP3 UIDLs) and Message-IDs against the stored
locations: the silent loss that users of other CRMs find by hand becomes a count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from crmail.mailboxes.drivers.base import Driver
from crmail.mailboxes.models import Location, Mailbox


@dataclass
class FolderCheck:
    folder: str
    on_server: int
    stored: int
    missing: list[str] = field(default_factory=list)  # on the server, not stored
    extra: list[str] = field(default_factory=list)  # stored, no longer on the server
    message_id_mismatches: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not (self.missing or self.extra or self.message_id_mismatches)


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
    headers = getattr(driver, "fetch_headers", None)
    for row in mailbox.folders.filter(sync_enabled=True, selectable=True).order_by("name"):
        rf = remote.get(row.remote_id)
        stored = dict(
            Location.objects.filter(folder=row).values_list("remote_id", "message__message_id")
        )
        if rf is None:
            checks.append(FolderCheck(row.name, 0, len(stored), extra=sorted(stored)))
            continue
        delta = driver.changes(rf, None)
        server_ids = delta.present_ids if delta.present_ids is not None else delta.new_ids
        check = FolderCheck(row.name, len(server_ids), len(stored))
        server_set = set(server_ids)
        check.missing = [i for i in server_ids if i not in stored]
        check.extra = sorted(set(stored) - server_set)
        if headers is not None:
            common = [i for i in server_ids if i in stored]
            server_mids = headers(rf, common) if common else {}
            check.message_id_mismatches = [
                i for i in common if i in server_mids and server_mids[i][0] != stored[i]
            ]
        checks.append(check)
    return VerifyReport(checks)


def duplicate_locations(mailbox: Mailbox) -> int:
    """Messages stored twice in one folder (should always be 0)."""
    pairs = Counter(Location.objects.filter(mailbox=mailbox).values_list("folder_id", "message_id"))
    return sum(n - 1 for n in pairs.values() if n > 1)
