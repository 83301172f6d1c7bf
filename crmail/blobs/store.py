"""The blob store: contents by SHA-256, written once in packs, read back through the index.

``write`` puts a batch's blobs in one new pack and makes it durable; ``record`` then adds
the pack and its blobs to the index inside the caller's transaction (the one that stores
the messages), so the index never points at bytes that are not on disk, and a crash
between the two leaves only a pack no row names, which ``collect`` removes once it is older
than any batch takes to commit. ``read_many`` reads stored forms back, a pack at a time;
``verify`` checks every blob against its hash (decision 050).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.db import connections, router, transaction

from crmail.blobs import packs
from crmail.blobs.backends import Backend, Place, opened, read_places
from crmail.blobs.models import Blob, Pack
from crmail.config.bulk import inserts
from crmail.config.durable import sync_commits
from crmail.failpoints import failpoint

# A pack no row names is removed only when older than this: a batch between writing its
# pack and committing its rows is never that slow.
ORPHAN_SECONDS = 3600
# Index rows read at once.
CHUNK = 500


@cache
def backend() -> Backend:
    """The store ``CRMAIL_BLOB_URL`` names (``settings.BLOB_URL``)."""
    return opened(settings.BLOB_URL)


@dataclass(frozen=True)
class Written:
    """A pack on durable storage, not yet in the index."""

    name: str
    size: int
    entries: list[packs.Entry]


def write(items: Sequence[packs.Item]) -> Written:
    """Write ``items`` as one new pack, durable when this returns; inside ``overlapped``,
    durable when that block ends (the pack is built and written by another thread)."""
    entries = packs.places(items)
    written = Written(uuid.uuid4().hex, packs.size(entries), entries)
    pending: list[Future[None]] | None = getattr(_overlap, "pending", None)
    if pending is None:
        backend().write(written.name, packs.pieces(items))
        failpoint("pack-written")
    else:
        pending.append(_writer().submit(lambda: backend().write(written.name, packs.pieces(items))))
    return written


_overlap = threading.local()


# Threads writing packs for ``overlapped`` blocks: one process may sync several mailboxes
# at once (the job worker's threads, the watcher), each waiting only for its own packs.
WRITERS = 4


@cache
def _writer() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(WRITERS, thread_name_prefix="crmail-pack")


@contextmanager
def overlapped() -> Iterator[None]:
    """Packs ``write`` starts inside this block are built, written and fsynced by another
    thread while the caller goes on (writing the index rows that name them, say); every
    one is durable when the block ends, or the block raises. Put it inside the
    transaction that records them: its commit then follows their fsync, as without it
    (SHA-256, CRC-32, ``write`` and ``fsync`` let the caller's thread run meanwhile)."""
    if getattr(_overlap, "pending", None) is not None:  # nested: the outer block waits
        yield
        return
    pending: list[Future[None]] = []
    _overlap.pending = pending
    try:
        yield
    finally:
        _overlap.pending = None
        failed: BaseException | None = None
        for future in pending:  # each one finished, whatever happens, before leaving
            try:
                future.result()
            except BaseException as exc:  # raised below, once every write has ended
                failed = failed or exc
    if failed is not None:
        raise failed
    if pending:
        failpoint("pack-written")


def record(written: Written) -> None:
    """Add ``written`` and its blobs to the index, in the caller's transaction. A blob the
    index holds already moves to the new pack: the old one may be on its way out
    (``collect`` removing a deleted message's bytes while the same content is stored
    again), the new one is durable."""
    pack = Pack.objects.create(name=written.name, size=written.size)
    quote = connections[router.db_for_write(Blob)].ops.quote_name
    columns = ["sha256", "pack", "offset", "length", "compression", "size"]
    moved = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in [*columns[2:], "pack_id"])
    # One row per content (a statement may not update the same row twice).
    entries = {e.sha256: e for e in written.entries}.values()
    rows = [(e.sha256, pack.pk, e.offset, e.length, e.compression, e.size) for e in entries]
    inserts(Blob, columns, rows, f" ON CONFLICT ({quote('sha256')}) DO UPDATE SET {moved}")


def places(digests: Iterable[str]) -> list[Place]:
    """Where each of ``digests`` the index holds lies (``read_places`` reads them)."""
    wanted = list(dict.fromkeys(digests))
    rows: list[Place] = []
    for start in range(0, len(wanted), CHUNK):
        rows += Blob.objects.filter(sha256__in=wanted[start : start + CHUNK]).values_list(
            "sha256", "pack__name", "offset", "length", "compression"
        )
    return rows


def read_many(digests: Iterable[str]) -> dict[str, tuple[bytes, int]]:
    """The stored form (bytes, compression) of each of ``digests`` the index holds.
    Raises ``packs.PackError`` when a pack no longer holds what the index says."""
    return read_places(backend(), places(digests))


def _records(name: str, places: Sequence[tuple[int, int]]) -> list[bytes]:
    """The records (header and stored bytes, unchecked: ``packs.record`` checks each) of
    pack ``name`` whose stored bytes lie at ``places`` (offset, length) as the index says."""
    return backend().read(name, [packs.span(offset, length) for offset, length in places])


@dataclass
class Verified:
    blobs: int = 0
    problems: list[str] = field(default_factory=list)


def verify(unpack: Callable[[bytes, int], bytes]) -> Verified:
    """Read every blob the index holds, unpack it (``unpack(stored, compression)``) and
    check its SHA-256; each one that fails is a problem, said in words."""
    report = Verified()
    for pack in Pack.objects.order_by("pk").iterator():
        blobs = list(
            Blob.objects.filter(pack=pack)
            .order_by("offset")
            .values_list("sha256", "offset", "length", "compression")
        )
        try:
            chunks = _records(pack.name, [(offset, length) for _, offset, length, _ in blobs])
        except OSError as exc:
            report.problems.append(
                f"pack {pack.name} cannot be read ({exc.strerror or exc}): {len(blobs)} blobs"
            )
            continue
        for (digest, _, _, compression), chunk in zip(blobs, chunks, strict=True):
            try:
                content = unpack(packs.record(chunk, digest), compression)
            except (packs.PackError, ValueError) as exc:
                report.problems.append(f"blob {digest} in pack {pack.name}: {exc}")
                continue
            if hashlib.sha256(content).hexdigest() != digest:
                report.problems.append(
                    f"blob {digest} in pack {pack.name}: its content has another hash"
                )
                continue
            report.blobs += 1
    return report


@dataclass
class Collected:
    packs: int = 0
    rewritten: int = 0
    problems: list[str] = field(default_factory=list)


def collect(
    live: Callable[[list[str]], set[str]],
    among: Iterable[str] | None = None,
    *,
    orphan_seconds: int = ORPHAN_SECONDS,
) -> Collected:
    """Remove what no one needs: blobs ``live`` (given digests, returns those still
    wanted) no longer wants, packs left with none (their bytes deleted), packs holding
    some rewritten without the rest (a deleted message's bytes do not stay behind), and
    packs no row names that are older than ``orphan_seconds`` (a crash's leftovers).
    With ``among``: only the packs holding those digests, and no orphans."""
    done = Collected()
    chosen = Pack.objects.order_by("pk")
    if among is not None:
        chosen = chosen.filter(pk__in=Blob.objects.filter(sha256__in=list(among)).values("pack_id"))
    for pack in chosen.iterator():
        digests = list(Blob.objects.filter(pack=pack).values_list("sha256", flat=True))
        keep = live(digests) if digests else set()
        if digests and len(keep) == len(digests):
            continue
        if keep:
            try:
                _rewrite(pack, keep)
            except (OSError, packs.PackError) as exc:
                # Left as it is (its live blobs stay readable where they can be); said.
                done.problems.append(f"pack {pack.name} could not be written again: {exc}")
                continue
            done.rewritten += 1
        else:
            with transaction.atomic():
                Blob.objects.filter(pack=pack).delete()
                pack.delete()
            _delete_pack(pack.name)
            done.packs += 1
    if among is not None:
        return done
    named = set(Pack.objects.values_list("name", flat=True))
    for name, age in list(backend().names()):
        if name not in named and age > orphan_seconds:
            backend().delete(name)
            done.packs += 1
    return done


def _rewrite(pack: Pack, keep: set[str]) -> None:
    """Move the blobs of ``pack`` in ``keep`` into a new pack, then delete the old one."""
    rows = list(
        Blob.objects.filter(pack=pack, sha256__in=keep).values_list(
            "sha256", "offset", "length", "compression", "size"
        )
    )
    chunks = _records(pack.name, [(offset, length) for _, offset, length, _, _ in rows])
    items = [
        packs.Item(digest, packs.record(chunk, digest), compression, size)
        for (digest, _, _, compression, size), chunk in zip(rows, chunks, strict=True)
    ]
    written = write(items)
    with transaction.atomic():
        Blob.objects.filter(pack=pack).delete()
        record(written)
        pack.delete()
    _delete_pack(pack.name)


def _delete_pack(name: str) -> None:
    """Delete a pack no row names any more, once the commit that let it go is on disk: a
    power cut must not bring back rows naming bytes that are gone (decision 078)."""
    sync_commits()
    backend().delete(name)
