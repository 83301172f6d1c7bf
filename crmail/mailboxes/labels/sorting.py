"""The labels by deal state on the server: made, sorted into, undone, removed (SPEC F8).

Servers with labels (``AppliesLabels``: Gmail) get labels: sorting puts the category's label
on a message and takes the one it leaves off (Inbox, or another category), and every other
label it carries stays. Servers with folders only (IMAP) get three folders
(``CreatesFolders``), and sorting moves the message (``MovesMessages``). Which kind a
mailbox gets is asked of its driver, never of its protocol's name (decision 044).

What is sorted: the mail crmail knows of (``metadata``) in the Inbox and under the three
labels. Inbox mail from an address whose contacts have a category goes under it and leaves
the Inbox; mail under a category whose contacts' deals changed goes under the new one, or
back to the Inbox when none is left. A move its owner undid is never made again by the
sorter. Each move is a ``LabelMove``, committed with crmail's own record of the copy
(``twoway.record_move``) as soon as the server made it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crmail.mailboxes.connect import can
from crmail.mailboxes.drivers.base import (
    AppliesLabels,
    CreatesFolders,
    DeletesFolders,
    Driver,
    DriverError,
    MovesMany,
    MovesMessages,
    RemoteFolder,
)
from crmail.mailboxes.folder_names import new_folder_path
from crmail.mailboxes.labels.categories import categories
from crmail.mailboxes.labels.metadata import SortableMail, metadata_for
from crmail.mailboxes.models import (
    Folder,
    LabelCategory,
    LabelMove,
    Location,
    Mailbox,
    MoveReason,
)
from crmail.mailboxes.twoway import record_move
from crmail.people.models import User


def can_label(mailbox: Mailbox) -> bool:
    """True when ``mailbox``'s server can hold the labels: labels of its own, or folders
    crmail can create and move mail between (not POP3)."""
    return can(mailbox, AppliesLabels) or (
        can(mailbox, CreatesFolders) and can(mailbox, MovesMessages)
    )


def is_on(mailbox: Mailbox) -> bool:
    """True when ``mailbox``'s mail is sorted: labels on (they need customer alerts) and
    the mailbox fetching."""
    return bool(mailbox.is_active and mailbox.customer_alerts and mailbox.deal_labels)


@dataclass
class Places:
    """The Inbox and the labels (or folders) of the three categories found on the server."""

    inbox: RemoteFolder
    labels: dict[LabelCategory, RemoteFolder]
    created: list[str] = field(default_factory=list)

    def category_of(self, folder: RemoteFolder) -> LabelCategory | None:
        for category, label in self.labels.items():
            if label.remote_id == folder.remote_id:
                return category
        return None


def _inbox(folders: list[RemoteFolder]) -> RemoteFolder:
    found = next((f for f in folders if f.role == "inbox"), None)
    found = found or next((f for f in folders if f.remote_id.upper() == "INBOX"), None)
    if found is None:
        raise DriverError("The server lists no Inbox, so there is no mail to sort.")
    return found


def places(driver: Driver, *, create: bool) -> Places:
    """Find the Inbox and the three labels; with ``create``, make those missing."""
    folders = driver.list_folders()
    found = Places(inbox=_inbox(folders), labels={})
    with_labels = isinstance(driver, AppliesLabels)
    if isinstance(driver, AppliesLabels):
        folders = driver.list_labels()
    for category in LabelCategory:
        name = str(category.label)
        path = name if with_labels else new_folder_path(folders, name)
        label = next((f for f in folders if f.remote_id == path or f.name == name), None)
        if label is None and create:
            if isinstance(driver, AppliesLabels):
                label = driver.create_label(name)
            elif isinstance(driver, CreatesFolders):
                label = driver.create_folder(path)
            else:
                raise DriverError(
                    "This server cannot create folders, so mail cannot be sorted there.",
                    kind="unsupported",
                )
            found.created.append(name)
        if label is not None:
            found.labels[category] = label
    return found


@dataclass(frozen=True)
class Planned:
    mail: SortableMail
    source: RemoteFolder
    target: RemoteFolder
    category: str  # the category it goes under; empty: back to the Inbox
    reason: str


def _carry(
    driver: Driver, source: RemoteFolder, remote_id: str, target: RemoteFolder
) -> str | None:
    """Move one message on the server; its id in ``target`` when known."""
    if isinstance(driver, AppliesLabels):
        driver.change_labels(remote_id, add=[target.remote_id], remove=[source.remote_id])
        return remote_id
    if isinstance(driver, MovesMessages):
        return driver.move(source, remote_id, target)
    raise DriverError("This server cannot move mail.", kind="unsupported")


def _folder_row(mailbox: Mailbox, remote: RemoteFolder) -> Folder:
    folder, _ = Folder.objects.get_or_create(
        mailbox=mailbox,
        remote_id=remote.remote_id,
        defaults={"name": remote.name, "selectable": remote.selectable, "role": remote.role or ""},
    )
    if not folder.exists_on_server:
        folder.exists_on_server = True
        folder.save(update_fields=["exists_on_server"])
    return folder


def _follow(
    mailbox: Mailbox, source: RemoteFolder, remote_id: str, target: RemoteFolder, new_id: str | None
) -> None:
    """crmail's copy (when it keeps one) follows the move the server made."""
    location = (
        Location.objects.filter(mailbox=mailbox, folder__remote_id=source.remote_id)
        .filter(remote_id=remote_id)
        .first()
    )
    if location is not None:
        record_move(location, _folder_row(mailbox, target), new_id)


MOVE_BATCH = 500  # messages moved in one command where the server can (``MovesMany``)


def carry_out(mailbox: Mailbox, driver: Driver, planned: Iterable[Planned]) -> list[LabelMove]:
    """Make the moves on the server, each logged as soon as it is made: a failure midway
    leaves the moves made before it logged and undoable. Where the server moves several
    messages in one command (``MovesMany``: IMAP), the moves from one folder to another go
    up to ``MOVE_BATCH`` a command, all or none, each still logged; otherwise one by one."""
    done: list[LabelMove] = []
    items = list(planned)
    if isinstance(driver, MovesMany) and not isinstance(driver, AppliesLabels):
        groups: dict[tuple[str, str], list[Planned]] = {}
        for item in items:
            groups.setdefault((item.source.remote_id, item.target.remote_id), []).append(item)
        for group in groups.values():
            for start in range(0, len(group), MOVE_BATCH):
                chunk = group[start : start + MOVE_BATCH]
                new_ids = driver.move_many(
                    chunk[0].source, [i.mail.remote_id for i in chunk], chunk[0].target
                )
                with transaction.atomic():
                    done += [_logged(mailbox, i, new_ids.get(i.mail.remote_id)) for i in chunk]
        return done
    for item in items:
        new_id = _carry(driver, item.source, item.mail.remote_id, item.target)
        with transaction.atomic():
            done.append(_logged(mailbox, item, new_id))
    return done


def _logged(mailbox: Mailbox, item: Planned, new_id: str | None) -> LabelMove:
    """The move the server made, in the log; crmail's copy follows it."""
    move = LabelMove.objects.create(
        mailbox=mailbox,
        message_id=item.mail.message_id,
        from_address=item.mail.from_address,
        source=item.source.remote_id,
        source_name=item.source.name,
        remote_id=item.mail.remote_id,
        target=item.target.remote_id,
        target_name=item.target.name,
        new_remote_id=new_id or "",
        category=item.category,
        reason=item.reason,
    )
    _follow(mailbox, item.source, item.mail.remote_id, item.target, new_id)
    return move


@dataclass
class SortReport:
    moves: list[LabelMove] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # labels made on the server


def plan(mailbox: Mailbox, found: Places, now: datetime | None = None) -> list[Planned]:
    """The moves that put ``mailbox``'s known mail where its senders' deals say."""
    metadata = metadata_for(mailbox)
    kept = set(
        LabelMove.objects.filter(mailbox=mailbox, undone_at__isnull=False)
        .exclude(restored_remote_id="")
        .values_list("source", "restored_remote_id")
    )
    folders = [found.inbox, *found.labels.values()]
    mail = {f.remote_id: metadata.in_folder(mailbox, f.remote_id) for f in folders}
    wanted = categories(mailbox.owner, {m.from_address for ms in mail.values() for m in ms}, now)
    planned: list[Planned] = []
    for folder in folders:
        current = found.category_of(folder)
        for item in mail[folder.remote_id]:
            if (folder.remote_id, item.remote_id) in kept:
                continue
            want = wanted.get(item.from_address)
            if want == current or (want is not None and want not in found.labels):
                continue
            if current is None:
                assert want is not None
                target, reason = found.labels[want], MoveReason.SORTED
            else:
                target = found.labels[want] if want is not None else found.inbox
                reason = MoveReason.RECATEGORISED
            planned.append(Planned(item, folder, target, want or "", reason))
    return planned


def sort_mailbox(mailbox: Mailbox, driver: Driver, now: datetime | None = None) -> SortReport:
    """Make the labels that are missing, then sort ``mailbox``'s mail under them."""
    found = places(driver, create=True)
    report = SortReport(created=found.created)
    report.moves = carry_out(mailbox, driver, plan(mailbox, found, now))
    return report


# ------------------------------------------------------------------------------ undo


class CannotUndo(Exception):
    """The move cannot be undone (its words say why); nothing changed."""


def undo_problem(move: LabelMove) -> str:
    """Why ``move`` cannot be undone, or empty when it can."""
    if move.undone_at is not None:
        return "This move was undone already."
    if move.reason == MoveReason.LABELS_REMOVED:
        return "Mail put back when the labels were removed stays in the Inbox."
    if not move.new_remote_id:
        return "The server did not say where the message went, so it cannot be moved back."
    later = LabelMove.objects.filter(
        mailbox_id=move.mailbox_id,
        source=move.target,
        remote_id=move.new_remote_id,
        pk__gt=move.pk,
    )
    if later.exists():
        return "The message was moved again since: undo the later move first."
    return ""


def undo(actor: User, move: LabelMove, driver: Driver) -> LabelMove:
    """Put the message back where ``move`` took it from; the sorter leaves it there."""
    problem = undo_problem(move)
    if problem:
        raise CannotUndo(problem)
    source = RemoteFolder(move.source, move.source_name, None)
    target = RemoteFolder(move.target, move.target_name, None)
    restored = _carry(driver, target, move.new_remote_id, source)
    with transaction.atomic():
        move.undone_at = timezone.now()
        move.undone_by = actor
        move.restored_remote_id = restored or ""
        move.save(update_fields=["undone_at", "undone_by", "restored_remote_id"])
        _follow(move.mailbox, target, move.new_remote_id, source, restored)
    return move


def undoable(moves: Iterable[LabelMove]) -> dict[int, bool]:
    """{move id: it can be undone} for a page of the log, in one query (``undo_problem``'s
    rules)."""
    rows = list(moves)
    later: dict[tuple[str, str], int] = {}
    if rows:
        condition = Q()
        for m in rows:
            condition |= Q(source=m.target, remote_id=m.new_remote_id)
        found = LabelMove.objects.filter(
            condition, mailbox_id__in={m.mailbox_id for m in rows}
        ).values_list("source", "remote_id", "pk")
        for source, remote_id, pk in found:
            later[(source, remote_id)] = max(pk, later.get((source, remote_id), 0))
    return {
        m.pk: m.undone_at is None
        and m.reason != MoveReason.LABELS_REMOVED
        and bool(m.new_remote_id)
        and later.get((m.target, m.new_remote_id), 0) <= m.pk
        for m in rows
    }


# ------------------------------------------------------------------------- removal


def remove_labels(mailbox: Mailbox, driver: Driver) -> list[LabelMove]:
    """Take the three labels off the server: every message under them goes back to the
    Inbox first (logged), then the label (or folder) is deleted where the server can."""
    found = places(driver, create=False)
    metadata = metadata_for(mailbox)
    moves: list[LabelMove] = []
    for folder in found.labels.values():
        delta = driver.changes(folder, None)
        ids = delta.present_ids if delta.present_ids is not None else delta.new_ids
        known = {m.remote_id: m for m in metadata.in_folder(mailbox, folder.remote_id)}
        planned = [
            Planned(
                known.get(i) or SortableMail(i, ""),
                folder,
                found.inbox,
                "",
                MoveReason.LABELS_REMOVED,
            )
            for i in ids
        ]
        moves += carry_out(mailbox, driver, planned)
        if isinstance(driver, DeletesFolders):
            driver.delete_folder(folder)
            with transaction.atomic():
                for row in Folder.objects.filter(mailbox=mailbox, remote_id=folder.remote_id):
                    if row.locations.exists():
                        row.exists_on_server = False
                        row.save(update_fields=["exists_on_server"])
                    else:
                        row.delete()
    return moves
