"""The sync engine: bring one mailbox's stored state up to what its server holds.

For each folder: ask the driver what changed since the stored cursor, apply removals and
flag changes, fetch the new messages in batches (raw bytes stored first, then parsed),
and store the new cursor only after everything it covers is committed. A crash anywhere
leaves the old cursor, so the next run asks again for the same changes; content hashes
and the (folder, remote id) constraint make applying them twice harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from crmail.blobs import store as blob_store
from crmail.config.bulk import datetimes, insert_rows
from crmail.config.durable import sync_commits
from crmail.events import outbox
from crmail.events.kinds import EventData, MailboxNeedsAttention, MessageReceived, SyncFinished
from crmail.jobs import leases
from crmail.jobs.models import Lease
from crmail.mail.ingest import PIPELINE_MIN_MESSAGES, HeadersFirst, ParsePipeline, parse_pending
from crmail.mail.parse import Headers, Unparseable
from crmail.mail.store import Prepared, prepare, store_rows, waiting_ids
from crmail.mailboxes import conversations, live_sync, quota, usage
from crmail.mailboxes.connect import daily_transfer_cap
from crmail.mailboxes.drivers.base import (
    Driver,
    DriverError,
    FiltersByArrival,
    FolderDelta,
    HandsOver,
    QueriesLive,
    ReadsHeaders,
    RemoteFolder,
    RemoteMessage,
    Throttled,
)
from crmail.mailboxes.models import Folder, Location, Mailbox, SyncState
from crmail.mailboxes.receivers import mark_copies

log = logging.getLogger(__name__)

BATCH_MESSAGES = 500
# A batch is stored while the next one is hashed and compressed and a third is fetched:
# 24 MB keeps a first sync's peak under 300 MB (32 MB: 309 MB, docs/benchmarks.md).
BATCH_BYTES = 24 * 1024 * 1024
FLAG_FIELDS = ("seen", "flagged", "answered", "deleted", "draft")
LOCATION_COLUMNS = (
    "mailbox",
    "folder",
    "message",
    "remote_id",
    "uid",
    *FLAG_FIELDS,
    "keywords",
    "created_at",
    "thread",
    "date",
)


UNEXPECTED = (
    "The sync stopped on an unexpected error; what it stored is kept and crmail tries again "
    "later (the worker's log has the details)."
)


@dataclass
class SyncReport:
    folders: int = 0
    fetched: int = 0
    reused: int = 0  # new locations of content already stored (moves, re-uploads, resets)
    removed: int = 0
    flags_changed: int = 0
    bytes: int = 0
    paused: bool = False
    errors: list[str] = field(default_factory=list)


Progress = Callable[[Mailbox], None]


def sync_mailbox(mailbox: Mailbox, driver: Driver, progress: Progress | None = None) -> SyncReport:
    """Run one complete sync of ``mailbox`` through a connected ``driver``."""
    report = SyncReport()
    now = timezone.now()
    Mailbox.objects.filter(pk=mailbox.pk).update(
        state=SyncState.SYNCING,
        sync_started_at=now,
        progress_done=0,
        progress_total=0,
        progress_bytes=0,
    )
    mailbox.refresh_from_db()
    try:
        if not mailbox.keeps_copy and isinstance(driver, QueriesLive):
            # Privacy mode: the mail is asked for live; only the Inbox's ids are kept.
            live_sync.sync_inbox(mailbox, driver)
            leases.release(resume_lease(mailbox.pk), RESUME_HOLDER)
            record_state(mailbox, SyncState.COMPLETED, "", "", report)
            return report
        folders = _sync_folder_list(mailbox, driver)
        # Consumers hear of the batches' events at most every second, and at the end.
        with outbox.gathered():
            with ParsePipeline() as parser:  # parses while the next batches are fetched
                for row, remote in folders:
                    report.folders += 1
                    _sync_folder(mailbox, driver, row, remote, report, progress, parser)
            parse_pending(mailbox.pk)  # left by an earlier run that stopped mid-parse
    except Throttled as exc:
        report.paused = True
        record_failure(mailbox, exc, report)
        return report
    except DriverError as exc:
        report.errors.append(str(exc))
        record_failure(mailbox, exc, report)
        raise
    except Exception:
        # A fault of crmail's, not the server's: say so in words (the traceback goes to the
        # worker's log with the exception) and let the scheduler retry after a pause.
        report.errors.append(UNEXPECTED)
        record_state(mailbox, SyncState.ERROR, UNEXPECTED, "internal", report)
        raise
    leases.release(resume_lease(mailbox.pk), RESUME_HOLDER)
    record_state(mailbox, SyncState.COMPLETED, "", "", report)
    return report


# A provider that asks crmail to wait (``Throttled.retry_after``) is waited for through a
# lease that only expires: the scheduler leaves the paused mailbox alone until then.
RESUME_HOLDER = "provider-asked-to-wait"


def resume_lease(mailbox_id: int) -> str:
    return f"mailbox-resume:{mailbox_id}"


def resume_times(mailbox_ids: list[int] | None = None) -> dict[int, datetime]:
    """{mailbox id: when its provider lets crmail sync again}, for mailboxes paused at a
    provider's request (not for a day's transfer cap)."""
    rows = Lease.objects.filter(name__startswith="mailbox-resume:", holder=RESUME_HOLDER)
    if mailbox_ids is not None:
        rows = rows.filter(name__in=[resume_lease(pk) for pk in mailbox_ids])
    return {
        int(name.rpartition(":")[2]): expires_at
        for name, expires_at in rows.values_list("name", "expires_at")
    }


def record_failure(mailbox: Mailbox, exc: DriverError, report: SyncReport | None = None) -> None:
    """Record a failed sync or connection: paused when the provider asked crmail to slow
    down (until the time it gave, or the day's cap resets), else the failure's state."""
    if isinstance(exc, Throttled):
        if exc.retry_after is not None:
            wait = timedelta(seconds=max(exc.retry_after, 1))
            leases.release(resume_lease(mailbox.pk), RESUME_HOLDER)
            leases.acquire(resume_lease(mailbox.pk), RESUME_HOLDER, wait)
        record_state(mailbox, SyncState.PAUSED, str(exc), exc.kind, report)
        return
    record_state(mailbox, failure_state(exc), str(exc), exc.kind, report)


# Failures only the owner can mend (sign in again, a new password, a certificate): a
# ``mailbox.needs_attention`` event tells them once per new error.
ATTENTION_KINDS = frozenset(
    {
        "auth",
        "app_password",
        "auth_unsupported",
        "oauth_revoked",
        "oauth_refresh",
        "oauth_client",
        "tls",
    }
)


def failure_state(exc: DriverError) -> str:
    """The state a mailbox is left in by ``exc``."""
    return SyncState.NEEDS_REAUTH if exc.kind == "oauth_revoked" else SyncState.ERROR


def record_state(
    mailbox: Mailbox, state: str, error: str, kind: str, report: SyncReport | None = None
) -> None:
    """Write a mailbox's state after a sync (``report``) or a failed connection, with its
    events in the same transaction: ``sync.finished`` after a sync, and
    ``mailbox.needs_attention`` when the owner must act and the error is new."""
    again = bool(error) and (mailbox.last_error, mailbox.last_error_kind) == (error, kind)
    fields: dict[str, Any] = {"state": state, "last_error": error, "last_error_kind": kind}
    if state == SyncState.COMPLETED:
        fields["last_sync_at"] = timezone.now()
    with transaction.atomic():
        Mailbox.objects.filter(pk=mailbox.pk).update(**fields)
        events: list[EventData] = []
        if report is not None:
            events.append(
                SyncFinished(
                    mailbox_id=mailbox.pk,
                    owner_id=mailbox.owner_id,
                    state=state,
                    fetched=report.fetched,
                    error=error,
                )
            )
        needs_owner = state == SyncState.NEEDS_REAUTH or (
            state == SyncState.ERROR and kind in ATTENTION_KINDS
        )
        if needs_owner and not again:
            events.append(
                MailboxNeedsAttention(
                    mailbox_id=mailbox.pk, owner_id=mailbox.owner_id, state=state, error=error
                )
            )
        outbox.record_many(events)
    for key, value in fields.items():
        setattr(mailbox, key, value)


def _sync_folder_list(mailbox: Mailbox, driver: Driver) -> list[tuple[Folder, RemoteFolder]]:
    """Record the server's folders; return the ones to sync, Inbox first."""
    remote = driver.list_folders()
    existing = {f.remote_id: f for f in mailbox.folders.all()}
    wanted = set(mailbox.import_folders or [])
    pairs: list[tuple[Folder, RemoteFolder]] = []
    for rf in remote:
        row = existing.get(rf.remote_id)
        if row is None:
            row = Folder.objects.create(
                mailbox=mailbox,
                remote_id=rf.remote_id,
                name=rf.name,
                role=rf.role or "",
                role_from_server=rf.role is not None,
                selectable=rf.selectable,
                sync_enabled=not wanted or rf.remote_id in wanted or rf.name in wanted,
            )
        elif (row.role_from_server or not row.role) and (
            (row.role or None) != rf.role or not row.exists_on_server
        ):
            row.role = rf.role or ""
            row.role_from_server = rf.role is not None
            row.exists_on_server = True
            row.save(update_fields=["role", "role_from_server", "exists_on_server"])
        if row.selectable and row.sync_enabled:
            pairs.append((row, rf))
    gone = set(existing) - {rf.remote_id for rf in remote}
    if gone:
        Folder.objects.filter(mailbox=mailbox, remote_id__in=gone).update(exists_on_server=False)
        lost = Location.objects.filter(folder__mailbox=mailbox, folder__remote_id__in=gone)
        with usage.removing(lost):
            lost.delete()
        conversations.refresh_folders(
            Folder.objects.filter(mailbox=mailbox, remote_id__in=gone).values_list("pk", flat=True)
        )
    pairs.sort(key=lambda p: (p[0].role != "inbox", p[0].name))
    return pairs


def _sync_folder(
    mailbox: Mailbox,
    driver: Driver,
    row: Folder,
    remote: RemoteFolder,
    report: SyncReport,
    progress: Progress | None,
    parser: ParsePipeline,
) -> None:
    delta = driver.changes(remote, row.cursor or None)
    known: dict[str, int] = dict(
        Location.objects.filter(folder=row).values_list("remote_id", "message_id")
    )
    if delta.reset and known:
        known = _rematch(driver, row, remote, delta, known, report)
    _apply_removals(row, delta, known, report)
    _apply_flags(row, delta, report)
    todo = [i for i in delta.new_ids if i not in known]
    if mailbox.import_since and todo:
        todo = _within_import_filter(driver, row, remote, mailbox, delta, todo)
    if isinstance(driver, HandsOver):
        # Stored by an earlier run that stopped before the server applied its deletions.
        stored_before = [i for i in delta.new_ids if i in known]
        if stored_before:
            _acknowledge(driver, remote, _stored_sizes(row, stored_before))
    if todo:
        Mailbox.objects.filter(pk=mailbox.pk).update(
            progress_total=mailbox.progress_total + len(todo)
        )
        mailbox.progress_total += len(todo)
        if len(todo) >= PIPELINE_MIN_MESSAGES:
            parser.start()
        _fetch_new(mailbox, driver, row, remote, todo, report, progress, parser)
    row.cursor = delta.cursor
    row.last_synced_at = timezone.now()
    row.save(update_fields=["cursor", "last_synced_at"])


def _stored_sizes(row: Folder, ids: list[str]) -> dict[str, int]:
    """{remote id: size of the stored bytes}: a server that hands mail over lets go only
    of what crmail holds whole (the size it lists)."""
    out: dict[str, int] = {}
    for start in range(0, len(ids), 5000):
        out.update(
            Location.objects.filter(
                folder=row,
                remote_id__in=ids[start : start + 5000],
                message__waiting_body__isnull=True,  # a body that waits stays on the server
            ).values_list("remote_id", "message__size")
        )
    return out


def _within_import_filter(
    driver: Driver,
    row: Folder,
    remote: RemoteFolder,
    mailbox: Mailbox,
    delta: FolderDelta,
    ids: list[str],
) -> list[str]:
    """The import filter's since-date: only mail that arrived on or after it is imported.

    Drivers that can tell arrival dates (IMAP SEARCH SINCE, POP3 TOP) do; the others
    import everything. IMAP applies it on the first sync of a folder (later mail is newer).
    Servers that hand mail over (POP3) list every message each time, so the ids left out
    are kept in the cursor and not asked about again.
    """
    one_way = isinstance(driver, HandsOver)
    if not isinstance(driver, FiltersByArrival) or mailbox.import_since is None:
        return ids
    if not (delta.reset or one_way):
        return ids
    skipped = set((row.cursor or {}).get("skipped", [])) if one_way else set()
    candidates = [i for i in ids if i not in skipped]
    allowed = driver.ids_since(remote, mailbox.import_since, candidates) if candidates else set()
    if one_way:
        still_there = set(delta.new_ids)
        delta.cursor["skipped"] = sorted(
            (skipped | {i for i in candidates if i not in allowed}) & still_there
        )
    return [i for i in candidates if i in allowed]


def _rematch(
    driver: Driver,
    row: Folder,
    remote: RemoteFolder,
    delta: FolderDelta,
    known: dict[str, int],
    report: SyncReport,
) -> dict[str, int]:
    """UIDVALIDITY changed: the old ids mean nothing. Keep the stored messages, re-find them.

    Messages are matched by Message-ID and size when the driver can list those cheaply;
    the rest are fetched again and matched by content hash in ``store_rows``.
    """
    old = list(
        Location.objects.filter(folder=row)
        .select_related("message")
        .values_list("message_id", "message__message_id", "message__size", "thread_id", "date")
    )
    by_identity = {(mid, size): pk for pk, mid, size, _, _ in old if mid}
    placed = {pk: (thread_id, when) for pk, _, _, thread_id, when in old}
    fresh: dict[str, int] = {}
    if isinstance(driver, ReadsHeaders) and delta.new_ids:
        for remote_id, (mid, size) in driver.fetch_headers(remote, delta.new_ids).items():
            pk = by_identity.get((mid, size)) if mid else None
            if pk is not None:
                fresh[remote_id] = pk
    with usage.removing(Location.objects.filter(folder=row)):
        Location.objects.filter(folder=row).delete()
        Location.objects.bulk_create(
            [
                Location(
                    mailbox_id=row.mailbox_id,
                    folder=row,
                    message_id=pk,
                    remote_id=rid,
                    uid=_as_uid(rid),
                    thread_id=placed[pk][0],
                    date=placed[pk][1],
                )
                for rid, pk in fresh.items()
            ]
        )
        conversations.refresh_folders([row.pk])
    report.reused += len(fresh)
    return fresh


def _apply_removals(
    row: Folder, delta: FolderDelta, known: dict[str, int], report: SyncReport
) -> None:
    removed = set(delta.removed_ids)
    if delta.present_ids is not None:
        removed |= set(known) - set(delta.present_ids)
    removed &= set(known)
    if removed:
        gone = Location.objects.filter(folder=row, remote_id__in=removed)
        with usage.removing(gone), conversations.following(gone):
            gone.delete()
        for rid in removed:
            known.pop(rid, None)
        report.removed += len(removed)


def _apply_flags(row: Folder, delta: FolderDelta, report: SyncReport) -> None:
    if not delta.flag_changes:
        return
    ids = list(delta.flag_changes)
    changed: list[Location] = []
    for start in range(0, len(ids), 5000):
        for loc in Location.objects.filter(folder=row, remote_id__in=ids[start : start + 5000]):
            if _set_flags(loc, delta.flag_changes[loc.remote_id]):
                changed.append(loc)
    if changed:
        Location.objects.bulk_update(changed, [*FLAG_FIELDS, "keywords"], batch_size=1000)
        conversations.refresh(conversations.key_of(loc) for loc in changed)
        report.flags_changed += len(changed)


def _flag_state(loc: Location) -> tuple[object, ...]:
    return (*(getattr(loc, f) for f in FLAG_FIELDS), loc.keywords)


def _set_flags(loc: Location, flags: frozenset[str]) -> bool:
    before = _flag_state(loc)
    for name in FLAG_FIELDS:
        setattr(loc, name, name in flags)
    loc.keywords = " ".join(sorted(f for f in flags if f not in FLAG_FIELDS))[:1000]
    return before != _flag_state(loc)


def _as_uid(remote_id: str) -> int | None:
    return int(remote_id) if remote_id.isdigit() else None


def _batches(messages: Iterator[RemoteMessage]) -> Iterator[list[RemoteMessage]]:
    batch: list[RemoteMessage] = []
    size = 0
    for m in messages:
        batch.append(m)
        size += len(m.raw or b"")
        if len(batch) >= BATCH_MESSAGES or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


Heads = Future[list[Headers | Unparseable]] | None


def _prepared(
    batches: Iterator[list[RemoteMessage]], parser: ParsePipeline
) -> Iterator[tuple[list[RemoteMessage], Prepared, Heads]]:
    """Each batch with its messages hashed and compressed by another thread, one batch
    ahead: while batch n is stored, n + 1 is hashed and compressed and n + 2 fetched
    (hashlib and zstandard work without holding the interpreter); with parsing workers,
    their header fields are read meanwhile too (``HeadersFirst``). A batch in hand when
    the server fails is still handed on to be stored before the failure is raised."""
    with ThreadPoolExecutor(1, thread_name_prefix="crmail-prepare") as worker:
        ahead: tuple[list[RemoteMessage], Future[Prepared], Heads] | None = None
        try:
            for batch in batches:
                raws = [m.raw or b"" for m in batch]
                future = worker.submit(prepare, raws, [m.internal_date for m in batch])
                heads = parser.read_headers(raws)
                batch = [replace(m, raw=None) for m in batch]  # the stored forms carry them
                if ahead is not None:
                    yield ahead[0], ahead[1].result(), ahead[2]
                ahead = (batch, future, heads)
        except DriverError:
            if ahead is not None:
                yield ahead[0], ahead[1].result(), ahead[2]
            raise
        if ahead is not None:
            yield ahead[0], ahead[1].result(), ahead[2]


def _headers_first(prepared: Prepared, heads: Heads) -> HeadersFirst | None:
    """What the workers read of a batch's header sections, when they could."""
    if heads is None:
        return None
    try:
        return HeadersFirst(prepared, heads.result())
    except Exception as exc:  # a worker died: the batch is stored pending and parsed after
        log.warning("Reading header fields failed (%s); parsing after the store", exc)
        return None


def _fetch_new(
    mailbox: Mailbox,
    driver: Driver,
    row: Folder,
    remote: RemoteFolder,
    ids: list[str],
    report: SyncReport,
    progress: Progress | None,
    parser: ParsePipeline,
) -> None:
    """Fetch and store ``ids`` in batches. A driver that drops a conversation out of step
    (kind "protocol") is asked once more for what is not stored yet: it connects again."""
    cap = daily_transfer_cap(mailbox)
    if cap is not None and mailbox.bytes_day == date.today() and mailbox.bytes_today >= cap:
        raise Throttled(_cap_reached(cap))  # "Sync now" on a paused mailbox fetches nothing
    done: set[str] = set()
    for attempt in (1, 2):
        try:
            fetched = _batches(driver.fetch(remote, [i for i in ids if i not in done]))
            for batch, prepared, heads in _prepared(fetched, parser):
                first = _headers_first(prepared, heads)
                _store_batch(mailbox, driver, row, remote, batch, prepared, parser, first)
                done.update(m.remote_id for m in batch)
                nbytes = sum(prepared.sizes)
                report.fetched += len(batch)
                report.bytes += nbytes
                _count_progress(mailbox, len(batch), nbytes)
                if progress:
                    progress(mailbox)
                if cap is not None and mailbox.bytes_today >= cap:
                    raise Throttled(_cap_reached(cap))
            return
        except DriverError as exc:
            if exc.kind != "protocol" or attempt == 2:
                raise
            log.warning("mailbox %s: the server fell out of step; asking again", mailbox.pk)


def _store_batch(
    mailbox: Mailbox,
    driver: Driver,
    row: Folder,
    remote: RemoteFolder,
    batch: list[RemoteMessage],
    prepared: Prepared,
    parser: ParsePipeline,
    first: HeadersFirst | None = None,
) -> None:
    """Raw bytes and locations in one transaction, counted in storage; then the server may
    let them go. Past the organisation's quota, new contents keep their headers and their
    bodies wait on the server (decision 058). With ``first``, new messages are stored with
    their header fields, participants and thread (decision 065); the others are parsed
    after, through ``parser``."""
    connection = connections[router.db_for_write(Location)]
    # The batch's pack is written and fsynced by another thread while its rows are
    # inserted; it is durable before they commit.
    with transaction.atomic(), blob_store.overlapped():
        room = usage.room_for(mailbox.owner_id, quota.total_bytes())
        describe = first.describe if first is not None else None
        messages = store_rows(prepared, room=room, describe=describe)
        # Contents this batch stored, in the blob store (their bodies do not wait).
        new = {m.pk: m.size for m in messages if m.packed is not None and not m.body_waits}
        usage.added(mailbox.pk, mailbox.owner_id, [m.pk for m in messages], locked=True, new=new)
        now = timezone.now()
        as_db = datetimes(connection)
        created = as_db(now)
        insert_rows(
            Location,
            LOCATION_COLUMNS,
            [
                (
                    mailbox.pk,
                    row.pk,
                    msg.pk,
                    m.remote_id,
                    _as_uid(m.remote_id),
                    *(f in m.flags for f in FLAG_FIELDS),
                    " ".join(sorted(f for f in m.flags if f not in FLAG_FIELDS))[:1000],
                    created,
                    msg.thread_id,  # known content keeps its thread and date (decision 028)
                    as_db(msg.date or now),
                )
                for m, msg in zip(batch, messages, strict=True)
            ],
            ignore_conflicts=True,  # stored by an earlier run that stopped before its cursor
        )
        if first is not None:
            mark_copies(first.saved(messages))
        conversations.refresh(conversations.keys_at(row.pk, [m.remote_id for m in batch]))
        outbox.record_many(
            [
                MessageReceived(
                    message_id=msg.pk,
                    mailbox_id=mailbox.pk,
                    owner_id=mailbox.owner_id,
                    folder_id=row.pk,
                    folder_role=row.role,
                )
                for msg in messages
            ]
        )
    if isinstance(driver, HandsOver):
        waiting = waiting_ids(msg.pk for msg in messages)  # they stay on the server
        sizes = zip(batch, prepared.sizes, messages, strict=True)
        _acknowledge(
            driver, remote, {m.remote_id: size for m, size, msg in sizes if msg.pk not in waiting}
        )
    parser.submit(messages, [msg.packed or prepared.form_of(i) for i, msg in enumerate(messages)])


def _acknowledge(driver: HandsOver, remote: RemoteFolder, stored: dict[str, int]) -> None:
    """Tell a server that hands mail over which messages crmail holds (it may delete them),
    once the commits that stored them are on disk: a power cut must not take crmail's copy
    after the server let its own go."""
    sync_commits()
    driver.acknowledge(remote, stored)


def _cap_reached(cap: int) -> str:
    return (
        f"Reached today's transfer limit of {cap / 1024**3:.1f} GB for this provider; "
        "the sync resumes tomorrow."
    )


def _count_progress(mailbox: Mailbox, count: int, nbytes: int) -> None:
    today = date.today()
    if mailbox.bytes_day != today:
        mailbox.bytes_day, mailbox.bytes_today = today, 0
    mailbox.bytes_today += nbytes
    mailbox.progress_done += count
    mailbox.progress_bytes += nbytes
    Mailbox.objects.filter(pk=mailbox.pk).update(
        bytes_day=mailbox.bytes_day,
        bytes_today=mailbox.bytes_today,
        progress_done=mailbox.progress_done,
        progress_bytes=mailbox.progress_bytes,
    )


def eta_seconds(mailbox: Mailbox) -> float | None:
    """Seconds left at the rate so far, for "Sync in progress" (None before any progress)."""
    if mailbox.state != SyncState.SYNCING or not mailbox.sync_started_at:
        return None
    elapsed = (timezone.now() - mailbox.sync_started_at).total_seconds()
    if mailbox.progress_done <= 0 or elapsed <= 0:
        return None
    rate = mailbox.progress_done / elapsed
    return max(mailbox.progress_total - mailbox.progress_done, 0) / rate
