"""IMAP4rev1 driver (RFC 3501) with CONDSTORE/QRESYNC, MOVE, UIDPLUS, SPECIAL-USE and IDLE.

One `ImapDriver` is one IMAP session (not thread-safe: one thread per driver). Ids are
UIDs as strings; cursors are ``{"uidvalidity", "uidnext", "highestmodseq"}``. Reading
uses EXAMINE and BODY.PEEK, so nothing is ever marked read by a sync.

Layers: ``imap_wire`` (socket, buffered lines and literals), ``imap_protocol`` (parsing
and encoding, no I/O), ``imap_errors`` (failures in words), ``imap_session`` (login,
tagged commands, pipelining, SELECT, IDLE state) and this module (the `Driver`).
"""

from __future__ import annotations

import contextlib
import select
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from .base import (
    Appends,
    CreatesFolders,
    DeletesFolders,
    Driver,
    DriverError,
    FiltersByArrival,
    FolderDelta,
    MovesMany,
    MovesMessages,
    ReadsHeaders,
    RemoteFolder,
    RemoteMessage,
    SetsFlags,
    WaitsForNews,
)
from .imap_errors import command_failed
from .imap_protocol import (
    FetchItem,
    Response,
    assign_roles,
    chunk_uids,
    code_numbers,
    compact_uids,
    expand_uid_set,
    flags_from_imap,
    flags_to_imap,
    format_internal_date,
    message_id_from_header,
    parse_fetch,
    parse_list,
    uid_mapping,
    uid_set_size,
)
from .imap_session import (
    CHANGE_KINDS,
    ImapConfig,
    ImapSession,
    LiteralArg,
    SelectInfo,
    expunge_issued,
    ignore,
)

__all__ = ["ImapConfig", "ImapDriver"]

FETCH_BATCH = 500  # messages per UID FETCH
FETCH_BATCH_BYTES = 16 << 20  # bytes per UID FETCH (a bigger message goes alone)
FETCH_DEPTH = 2  # UID FETCH commands in flight: the next batch is asked before this one ends
META_BATCH = 5000  # UIDs per metadata command (sizes, Message-IDs)
VANISHED_LIMIT = 200_000  # a larger VANISHED set is replaced by listing the present UIDs
IDLE_RENEW = 29 * 60  # RFC 2177 §3: re-issue IDLE at least every 29 minutes
POLL_INTERVAL = 30.0  # NOOP polling for servers without IDLE
_FETCH_ITEMS = b"(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
_MONTHS = b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
# The SPECIAL-USE flag (RFC 6154 §2) a folder created for a role asks for.
ROLE_FLAGS = {"sent": b"\\Sent", "drafts": b"\\Drafts", "trash": b"\\Trash", "junk": b"\\Junk"}


class ImapDriver(
    ImapSession,
    Driver,
    ReadsHeaders,
    FiltersByArrival,
    SetsFlags,
    MovesMessages,
    MovesMany,
    Appends,
    CreatesFolders,
    DeletesFolders,
    WaitsForNews,
):
    """An IMAP mailbox as a `base.Driver`, plus two-way operations and IDLE.

    ``on_close`` is called once, when the driver is closed (a connection slot given back).
    """

    def __init__(self, config: ImapConfig, *, on_close: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_close = on_close

    def close(self) -> None:
        try:
            super().close()
        finally:
            done, self._on_close = self._on_close, None
            if done is not None:
                done()

    # -- folders --------------------------------------------------------------------------

    def list_folders(self) -> list[RemoteFolder]:
        """LIST "" "*" (RETURN (SPECIAL-USE) per RFC 6154 §5.1 when offered) with roles."""
        self.connect()
        entries = []

        def collect(resp: Response) -> None:
            if resp.kind == b"LIST":
                entries.append(parse_list(resp))

        parts = [b'LIST "" "*"']
        if {"SPECIAL-USE", "LIST-EXTENDED"} <= self._caps:
            parts.append(b" RETURN (SPECIAL-USE)")
        self._run(parts, "listing folders", collect)
        roles = assign_roles(entries)
        self._raw_names = {e.name: e.raw for e in entries}
        self._folders = [
            RemoteFolder(
                remote_id=e.name,
                name="Inbox" if e.name == "INBOX" else e.name,
                role=roles.get(e.raw),
                selectable=e.selectable,
                delimiter=e.delimiter or "/",
            )
            for e in entries
        ]
        return list(self._folders)

    def create_folder(self, name: str, role: str | None = None) -> RemoteFolder:
        """CREATE (RFC 3501 §6.3.3), with USE (RFC 6154 §3) when the server offers
        CREATE-SPECIAL-USE and ``role`` is given, then SUBSCRIBE (§6.3.6) so that other mail
        programs show it. A folder that exists already (ALREADYEXISTS, RFC 5530 §3) is
        taken as it is."""
        self.connect()
        parts = [b"CREATE ", self._mailbox(name)]
        flag = ROLE_FLAGS.get(role or "")
        if flag and "CREATE-SPECIAL-USE" in self._caps:
            parts.append(b" (USE (" + flag + b"))")
        tagged = self._run(parts, f"creating the folder {name}", check=False)
        if tagged.kind != b"OK" and tagged.code != b"ALREADYEXISTS":
            raise command_failed(f"creating the folder {name}", tagged)
        self._run([b"SUBSCRIBE ", self._mailbox(name)], f"subscribing to {name}", check=False)
        listed = next((f for f in self.list_folders() if f.remote_id == name), None)
        if listed is None:
            raise DriverError(
                f"The server answered that it created the folder {name}, but does not list it."
            )
        return listed

    def delete_folder(self, folder: RemoteFolder | str) -> None:
        """UNSUBSCRIBE (RFC 3501 §6.3.7), then DELETE (§6.3.4); the folder is left first
        when it is the one selected. A folder that does not exist (NONEXISTENT, RFC 5530
        §3) is taken as deleted."""
        self.connect()
        name = self._name(folder)
        if self._selected == name:
            self._select("INBOX", write=False)
        self._run([b"UNSUBSCRIBE ", self._mailbox(folder)], f"unsubscribing {name}", check=False)
        tagged = self._run([b"DELETE ", self._mailbox(folder)], f"deleting {name}", check=False)
        if tagged.kind != b"OK" and tagged.code != b"NONEXISTENT":
            raise command_failed(f"deleting the folder {name}", tagged)
        self._raw_names.pop(name, None)

    # -- changes --------------------------------------------------------------------------

    def changes(self, folder: RemoteFolder | str, cursor: Mapping[str, Any] | None) -> FolderDelta:
        """What changed since ``cursor`` (RFC 7162 QRESYNC §3.2.5, CONDSTORE §3.1, or UIDs).

        No cursor or a new UIDVALIDITY (RFC 3501 §2.3.1.1): ``reset``, every UID in
        ``present_ids`` and ``new_ids``, every message's flags in ``flag_changes``.
        """
        self.connect()
        old = dict(cursor or {})
        o_uv: Any = old.get("uidvalidity")  # JSON values, as the cursor was stored
        o_next: Any = old.get("uidnext")
        o_modseq: Any = old.get("highestmodseq")
        use_qresync = self._qresync and bool(o_uv) and bool(o_modseq)
        info = self._select(
            folder, write=False, qresync=(int(o_uv), int(o_modseq)) if use_qresync else None
        )
        new_cursor: dict[str, Any] = {
            "uidvalidity": info.uidvalidity,
            "uidnext": info.uidnext,
            "highestmodseq": info.highestmodseq if self._condstore and not info.nomodseq else None,
        }
        if not old or o_uv != info.uidvalidity or not o_next:
            flags = self._all_flags(info, folder=self._name(folder))
            ids = sorted(flags)
            _fix_uidnext(new_cursor, ids)
            return FolderDelta(
                cursor=new_cursor,
                reset=True,
                new_ids=[str(u) for u in ids],
                flag_changes={str(u): f for u, f in flags.items()},
                present_ids=[str(u) for u in ids],
            )
        o_next = int(o_next)
        with_modseq = new_cursor["highestmodseq"] is not None and o_modseq is not None
        delta = FolderDelta(cursor=new_cursor)
        if use_qresync and with_modseq:
            delta.flag_changes = {
                str(f.uid): flags_from_imap(f.flags)
                for f in info.fetches
                if f.uid is not None and f.uid < o_next and f.flags is not None
            }
            if sum(uid_set_size(v) for v in info.vanished) > VANISHED_LIMIT:
                present = self._all_uids(info)
                delta.present_ids = [str(u) for u in present]
                new = [u for u in present if u >= o_next]
            else:
                gone: set[int] = set()
                for value in info.vanished:
                    gone.update(expand_uid_set(value, below=o_next))
                delta.removed_ids = [str(u) for u in sorted(gone)]
                new = self._uids_from(o_next, info) if (info.uidnext or 0) > o_next else []
        elif with_modseq:
            if info.highestmodseq != int(o_modseq) and o_next > 1:
                delta.flag_changes = {
                    str(u): f for u, f in self._changed_flags(o_next - 1, int(o_modseq)).items()
                }
            present = self._all_uids(info)
            delta.present_ids = [str(u) for u in present]
            new = [u for u in present if u >= o_next]
        else:
            flags = self._all_flags(info)
            present = sorted(flags)
            delta.present_ids = [str(u) for u in present]
            delta.flag_changes = {str(u): f for u, f in flags.items() if u < o_next}
            new = [u for u in present if u >= o_next]
        delta.new_ids = [str(u) for u in new]
        _fix_uidnext(new_cursor, new)
        return delta

    def ids_since(
        self, folder: RemoteFolder | str, day: date, ids: Iterable[str] | None = None
    ) -> set[str]:
        """UIDs of messages that arrived on or after ``day`` (UID SEARCH SINCE, RFC 3501 §6.4.4).

        One search answers for the whole folder, so ``ids`` (the candidates) is not needed.

        SINCE compares the internal date (arrival), which is what an import filter means.
        """
        info = self._select(folder, write=False)
        if not info.exists:
            return set()
        when = b"%d-%s-%d" % (day.day, _MONTHS[day.month - 1], day.year)
        return {str(u) for u in self._search(b"SINCE " + when)}

    def _all_flags(self, info: SelectInfo, folder: str | None = None) -> dict[int, frozenset[str]]:
        """UID FETCH 1:* (UID FLAGS): every UID with its flags.

        With ``folder`` (a full listing before a first sync) RFC822.SIZE comes along and
        is kept as a hint for `fetch`, which then plans its batches without a size pass.
        UIDs never change size (RFC 3501 §2.3.1.1), so a stale hint only skews batching.
        """
        out: dict[int, frozenset[str]] = {}
        sizes: dict[int, int] = {}
        if folder is not None:
            self._size_hints = {folder: sizes}  # one folder's worth at a time
        if not info.exists:
            return out

        def collect(resp: Response) -> None:
            if resp.kind == b"FETCH":
                item = parse_fetch(resp)
                if item.uid is not None and item.flags is not None:
                    out[item.uid] = flags_from_imap(item.flags)
                    if item.size is not None:
                        sizes[item.uid] = item.size

        items = b"(UID FLAGS RFC822.SIZE)" if folder is not None else b"(UID FLAGS)"
        self._run([b"UID FETCH 1:* " + items], "listing messages", collect)
        return out

    def _changed_flags(self, last_uid: int, modseq: int) -> dict[int, frozenset[str]]:
        """UID FETCH 1:n (UID FLAGS) (CHANGEDSINCE m) (RFC 7162 §3.1.4.1)."""
        out: dict[int, frozenset[str]] = {}

        def collect(resp: Response) -> None:
            if resp.kind == b"FETCH":
                item = parse_fetch(resp)
                if item.uid is not None and item.flags is not None and item.uid <= last_uid:
                    out[item.uid] = flags_from_imap(item.flags)

        cmd = b"UID FETCH 1:%d (UID FLAGS) (CHANGEDSINCE %d)" % (last_uid, modseq)
        self._run([cmd], "listing flag changes", collect)
        return out

    # -- fetching -------------------------------------------------------------------------

    def fetch(
        self,
        folder: RemoteFolder | str,
        ids: list[str],
        sizes: Mapping[str, int] | None = None,
    ) -> Iterator[RemoteMessage]:
        """Stream the messages ``ids`` (raw bytes, flags, size, internal date).

        UIDs go in UID FETCH ... BODY.PEEK[] batches of at most FETCH_BATCH messages and
        FETCH_BATCH_BYTES bytes (sizes from ``sizes`` or one RFC822.SIZE pass), as compact
        UID sets, with FETCH_DEPTH commands in flight so the server never waits for us.
        Batches follow the order of ``ids``; within a batch messages come in UID order.
        UIDs no longer on the server are skipped silently.
        """
        uids = [int(i) for i in ids if i.isdigit()]
        if not uids:
            return iter(())
        self._ensure_selected(folder, write=False)
        hints = self._size_hints.get(self._name(folder), {})
        known = {u: hints[u] for u in uids if u in hints}
        known.update({int(k): v for k, v in (sizes or {}).items() if k.isdigit()})
        missing = [u for u in uids if u not in known]
        if missing:
            for uid, (_mid, size) in self._meta(missing, with_message_id=False).items():
                known[uid] = size
        batches = list(_plan_batches([u for u in uids if u in known], known))
        return self._fetch_batches(batches)

    def _fetch_batches(self, batches: list[list[int]]) -> Iterator[RemoteMessage]:
        self._settle()
        owner = object()
        self._owner = owner
        pending = self._inflight
        todo = iter(batches)
        wanted: set[int] = set()
        sent = 0

        def send_next() -> None:
            nonlocal sent
            batch = next(todo, None)
            if batch is not None:
                wanted.update(batch)
                cmd = b"UID FETCH " + compact_uids(batch).encode() + b" " + _FETCH_ITEMS
                pending.append(self._send([cmd]))
                sent += 1

        try:
            for _ in range(FETCH_DEPTH):
                send_next()
            while pending and self._owner is owner:
                resp = self._read()
                if resp.tag is None:
                    if resp.kind == b"FETCH":
                        item = parse_fetch(resp)
                        if item.body is not None and item.uid in wanted:
                            wanted.discard(item.uid)
                            yield _message(item)
                    continue
                if resp.tag not in pending:
                    raise self._out_of_step(resp)
                pending.remove(resp.tag)
                if resp.kind != b"OK" and not expunge_issued(resp):
                    raise command_failed("fetching messages", resp)
                send_next()
        finally:
            if self._owner is owner:
                if self._wire is not None and pending:
                    with contextlib.suppress(DriverError):
                        self._settle()
                self._owner = None
                pending.clear()

    def fetch_headers(
        self, folder: RemoteFolder | str, ids: list[str]
    ) -> dict[str, tuple[str, int]]:
        """{uid: (Message-ID without <>, RFC822.SIZE)} for re-matching after a reset.

        BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] (RFC 3501 §6.4.5) in batches of META_BATCH.
        """
        uids = [int(i) for i in ids if i.isdigit()]
        if not uids:
            return {}
        self._ensure_selected(folder, write=False)
        return {str(u): v for u, v in self._meta(uids, with_message_id=True).items()}

    def _meta(self, uids: list[int], *, with_message_id: bool) -> dict[int, tuple[str, int]]:
        out: dict[int, tuple[str, int]] = {}
        items = b"(UID RFC822.SIZE"
        items += b" BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])" if with_message_id else b")"
        wanted = set(uids)

        def collect(resp: Response) -> None:
            if resp.kind == b"FETCH":
                item = parse_fetch(resp)
                if item.uid in wanted and item.size is not None:
                    mid = message_id_from_header(item.body) if item.body else ""
                    out[item.uid] = (mid, item.size)

        commands = (
            [b"UID FETCH " + compact_uids(chunk).encode() + b" " + items]
            for chunk in chunk_uids(sorted(wanted), META_BATCH)
        )
        self._run_many(commands, "reading message sizes", collect)
        return out

    # -- two-way operations -----------------------------------------------------------------

    def set_flags(
        self,
        folder: RemoteFolder | str,
        id: str,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
    ) -> None:
        """UID STORE ±FLAGS.SILENT (RFC 3501 §6.4.6) with crmail's flag names."""
        plus, minus = flags_to_imap(add), flags_to_imap(remove)
        if not plus and not minus:
            return
        self._ensure_selected(folder, write=True)
        commands = [
            [b"UID STORE %d %sFLAGS.SILENT (%s)" % (int(id), sign, " ".join(fl).encode())]
            for sign, fl in ((b"+", plus), (b"-", minus))
            if fl
        ]
        self._run_many(commands, "changing flags", ignore)

    def move(self, folder: RemoteFolder | str, id: str, dest: RemoteFolder | str) -> str | None:
        """Move one message; return its UID in ``dest`` when the server says (COPYUID).

        UID MOVE (RFC 6851 §3.2) when offered, else UID COPY + \\Deleted + UID EXPUNGE
        (RFC 4315 §2.1).
        """
        return self._moved(folder, [int(id)], dest).get(int(id))

    def move_many(
        self, folder: RemoteFolder | str, ids: Sequence[str], dest: RemoteFolder | str
    ) -> dict[str, str | None]:
        """Move several messages in one UID MOVE (RFC 6851: all or none); their UIDs in
        ``dest`` from COPYUID. Without MOVE, one after another (``move``)."""
        if "MOVE" not in self._caps:
            return {i: self.move(folder, i, dest) for i in ids}
        moved = self._moved(folder, sorted({int(i) for i in ids}), dest) if ids else {}
        return {i: moved.get(int(i)) for i in ids}

    def _moved(
        self, folder: RemoteFolder | str, uids: list[int], dest: RemoteFolder | str
    ) -> dict[int, str]:
        """UID MOVE of ``uids`` (UID COPY, \\Deleted and expunge of one without MOVE);
        {old UID: new UID} as COPYUID says."""
        self._ensure_selected(folder, write=True)
        codes: list[Response] = []

        def collect(resp: Response) -> None:
            if resp.code == b"COPYUID":
                codes.append(resp)

        target = self._mailbox(dest)
        if "MOVE" in self._caps:
            command = f"UID MOVE {compact_uids(uids)} ".encode()
            codes.append(self._run([command, target], "moving messages", collect))
        else:
            [uid] = uids
            tagged = self._run([b"UID COPY %d " % uid, target], "copying a message", collect)
            self._store_deleted_and_expunge(uid)
            codes.append(tagged)
        mapping: dict[int, str] = {}
        for resp in codes:
            words = code_numbers(resp) if resp.code == b"COPYUID" else []
            if len(words) >= 3:
                mapping.update({o: str(n) for o, n in uid_mapping(words[1], words[2]).items()})
        return mapping

    def delete(self, folder: RemoteFolder | str, id: str) -> str | None:
        """Move to the Trash folder (returning the new UID) or, in Trash or without one,
        set \\Deleted and expunge just this message (RFC 4315 §2.1)."""
        folders = self._folders if self._folders is not None else self.list_folders()
        trash = next((f for f in folders if f.role == "trash" and f.selectable), None)
        if trash is not None and trash.remote_id != self._name(folder):
            return self.move(folder, id, trash)
        self._ensure_selected(folder, write=True)
        self._store_deleted_and_expunge(int(id))
        return None

    def _store_deleted_and_expunge(self, uid: int) -> None:
        self._run([b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid], "deleting a message")
        if "UIDPLUS" in self._caps:
            self._run([b"UID EXPUNGE %d" % uid], "expunging a message")
            return
        # Without UID EXPUNGE an EXPUNGE removes every \Deleted message: only when ours is
        # the only one; otherwise it stays flagged \Deleted (hidden by most clients).
        if self._search(b"DELETED") == [uid]:
            self._run([b"EXPUNGE"], "expunging a message")

    def append(
        self,
        folder: RemoteFolder | str,
        raw: bytes,
        flags: Iterable[str] = (),
        date: datetime | None = None,
    ) -> str | None:
        """APPEND (RFC 3501 §6.3.11); the new UID from APPENDUID (RFC 4315 §3) when given."""
        parts = [
            b"APPEND ",
            self._mailbox(folder),
            b" (" + " ".join(flags_to_imap(flags)).encode() + b")",
        ]
        if date is not None:
            parts.append(b' "' + format_internal_date(date).encode() + b'"')
        parts += [b" ", LiteralArg(raw)]
        tagged = self._run(parts, f"storing a message in {self._name(folder)}")
        if tagged.code == b"APPENDUID":
            words = code_numbers(tagged)
            if len(words) >= 2 and words[1].isdigit():
                return words[1].decode()
        return None

    # -- IDLE (RFC 2177) ------------------------------------------------------------------

    def idle_start(
        self, folder: RemoteFolder | str, cursor: Mapping[str, Any] | None = None
    ) -> None:
        """EXAMINE ``folder`` and enter IDLE without waiting for news.

        With ``cursor``, a folder that already differs from it (new UIDNEXT, HIGHESTMODSEQ
        or UIDVALIDITY) counts as changed at once, closing the gap between the last sync
        and the start of IDLE.
        """
        self.connect()
        if "IDLE" not in self._caps:
            raise DriverError("The server does not support IDLE.", kind="unsupported")
        self._settle()
        info = self._select(folder, write=False)
        self._idle_changed = bool(cursor) and any(
            cursor.get(key) not in (None, value)  # type: ignore[union-attr]
            for key, value in (
                ("uidvalidity", info.uidvalidity),
                ("uidnext", info.uidnext),
                ("highestmodseq", info.highestmodseq),
            )
        )
        self._enter_idle()

    def idle(self, folder: RemoteFolder | str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for news in ``folder``; True when something changed.

        IDLE is renewed every 29 minutes (RFC 2177 §3); without IDLE, NOOP every 30 s.
        """
        self.connect()
        if "IDLE" not in self._caps:
            return self._poll(folder, timeout)
        deadline = time.monotonic() + timeout
        self.idle_start(folder)
        try:
            while not self.idle_check():
                now = time.monotonic()
                if now >= deadline:
                    break
                if now - self._idle_since >= IDLE_RENEW:
                    self.idle_done()
                    self._enter_idle()
                    continue
                wait = min(deadline - now, IDLE_RENEW - (now - self._idle_since))
                select.select([self.fileno()], [], [], max(wait, 0))
        finally:
            changed = self.idle_done() if self._wire is not None else False
        return changed

    def _poll(self, folder: RemoteFolder | str, timeout: float) -> bool:
        changed = False

        def note(resp: Response) -> None:
            nonlocal changed
            changed = changed or resp.kind in CHANGE_KINDS

        self._select(folder, write=False)
        deadline = time.monotonic() + timeout
        while not changed and time.monotonic() < deadline:
            time.sleep(min(POLL_INTERVAL, max(deadline - time.monotonic(), 0)))
            self._run([b"NOOP"], "NOOP", note)
        return changed


def _fix_uidnext(cursor: dict[str, Any], uids: list[int]) -> None:
    """Servers without UIDNEXT, or messages that arrived after SELECT: never go backwards."""
    if uids:
        cursor["uidnext"] = max(cursor.get("uidnext") or 0, max(uids) + 1)
    elif cursor.get("uidnext") is None:
        cursor["uidnext"] = 1


def _plan_batches(uids: list[int], sizes: Mapping[int, int]) -> Iterator[list[int]]:
    """Batches of ≤ FETCH_BATCH messages and ≤ FETCH_BATCH_BYTES (a larger one goes alone)."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if batch and (len(batch) >= FETCH_BATCH or total + size > FETCH_BATCH_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def _message(item: FetchItem) -> RemoteMessage:
    body = item.body or b""
    return RemoteMessage(
        remote_id=str(item.uid),
        flags=flags_from_imap(item.flags or ()),
        raw=body,
        size=item.size if item.size is not None else len(body),
        internal_date=item.internal_date,
    )
