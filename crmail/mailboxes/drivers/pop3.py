"""POP3 (RFC 1939, RFC 2449 capabilities, RFC 2595 STLS): one-way, by UIDL.

One folder, "INBOX". ``changes`` lists every UIDL and its size (the engine skips the ones
it stored); ``fetch`` retrieves with RETR, several commands in flight when the server
offers PIPELINING; ``acknowledge`` deletes what crmail has committed, unless messages
are kept on the server, and only messages whose stored bytes have the size the server
lists. Deletions take effect at QUIT (``close``), so a crash deletes nothing. The wire
work is in ``pop3_session``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from typing import Any

from .base import (
    Driver,
    DriverError,
    FiltersByArrival,
    FolderDelta,
    HandsOver,
    ReadsHeaders,
    RemoteFolder,
    RemoteMessage,
)
from .imap_protocol import message_id_from_header
from .pop3_session import Pop3Refused, Pop3Session, listing, whole_message

log = logging.getLogger(__name__)

INBOX = RemoteFolder(remote_id="INBOX", name="Inbox", role="inbox")
PIPELINE_DEPTH = 50


@dataclass(frozen=True)
class Pop3Config:
    host: str
    port: int
    security: str  # "tls", "starttls" or "none"
    login: str
    password: str = ""
    oauth2_token: str = ""
    keep_on_server: bool = True
    allow_self_signed: bool = False
    cafile: str | None = None
    timeout: float = 60.0

    def __repr__(self) -> str:
        return f"Pop3Config(host={self.host!r}, port={self.port}, security={self.security!r})"


class Pop3Driver(Driver, ReadsHeaders, FiltersByArrival, HandsOver):
    """A POP3 session as a `base.Driver`. The server hands mail over (``HandsOver``):
    messages it lets go stay in crmail, and LIST gives each size as RETR sends it.

    ``on_close`` is called once, when the driver is closed (a connection slot given back).
    """

    def __init__(self, config: Pop3Config, *, on_close: Callable[[], None] | None = None) -> None:
        self.config = config
        self._on_close = on_close
        self._session: Pop3Session | None = None
        self._numbers: dict[str, int] = {}
        self._sizes: dict[str, int] = {}  # UIDL → LIST size, this session
        self._to_delete: list[int] = []  # message numbers, sent with DELE before QUIT

    def __enter__(self) -> Pop3Driver:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def capabilities(self) -> set[str]:
        return self.session.capabilities

    def connect(self) -> None:
        cfg = self.config
        session = Pop3Session(
            cfg.host,
            cfg.port,
            cfg.security,
            timeout=cfg.timeout,
            allow_self_signed=cfg.allow_self_signed,
            cafile=cfg.cafile,
        )
        session.connect()
        try:
            session.login(cfg.login, cfg.password, cfg.oauth2_token)
        except BaseException:
            session.abort()
            raise
        self._session = session
        # Message numbers hold for one session only.
        self._numbers, self._sizes, self._to_delete = {}, {}, []

    @property
    def session(self) -> Pop3Session:
        if self._session is None or not self._session.connected:
            self.connect()
        assert self._session is not None
        return self._session

    def close(self) -> None:
        """DELE what was acknowledged, then QUIT: the server applies deletions now, and
        only now. A reply out of step drops the session instead, deleting nothing."""
        try:
            self._quit()
        finally:
            done, self._on_close = self._on_close, None
            if done is not None:
                done()

    def _quit(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        if self._to_delete and session.connected:
            depth = PIPELINE_DEPTH if "PIPELINING" in session.capabilities else 1
            commands = [b"DELE %d" % n for n in self._to_delete]
            self._to_delete = []
            try:
                for _ in session.pipeline(commands, depth, multiline=False):
                    pass  # a -ERR: gone meanwhile
            except DriverError:
                return  # the session was dropped: nothing is deleted
        session.quit()

    def list_folders(self) -> list[RemoteFolder]:
        return [INBOX]

    def changes(self, folder: RemoteFolder, cursor: dict[str, Any] | None) -> FolderDelta:
        """Every UIDL on the server; the engine fetches those it has not stored."""
        session = self.session
        try:
            uidls = listing(session.multiline(b"UIDL"))
            sizes = dict(listing(session.multiline(b"LIST")))
        except Pop3Refused as exc:
            raise DriverError(
                "The server does not support UIDL, which crmail needs to "
                f"download each message once: {exc}",
                kind="protocol",
            ) from None
        except ValueError:
            raise session.broken("a message list crmail cannot read") from None
        self._numbers, self._sizes = {}, {}
        order: list[str] = []
        for number, uidl in uidls:
            size = sizes.get(number, "")
            if uidl not in self._numbers:
                self._numbers[uidl] = number
                if size.isdigit():
                    self._sizes[uidl] = int(size)
                order.append(uidl)
        return FolderDelta(cursor={"count": len(order)}, new_ids=order)

    def _wanted(self, folder: RemoteFolder, ids: Iterable[str]) -> list[tuple[str, int]]:
        """(uidl, message number) of ``ids``, in this session's numbers: after a dropped
        conversation, the new session lists them again."""
        if self._session is None or not self._session.connected:
            self.connect()
        if not self._numbers:
            self.changes(folder, None)
        return [(i, self._numbers[i]) for i in ids if i in self._numbers]

    def _each(self, commands: list[bytes]) -> Iterator[bytes | None]:
        depth = PIPELINE_DEPTH if "PIPELINING" in self.session.capabilities else 1
        return self.session.pipeline(commands, depth)

    def fetch(self, folder: RemoteFolder, ids: list[str]) -> Iterator[RemoteMessage]:
        """RETR each id, ``PIPELINE_DEPTH`` commands in flight when PIPELINING is offered.

        A ``-ERR`` (deleted meanwhile by another client) skips that message; any reply
        out of step ends the session without deleting anything (``Pop3Session.broken``).
        """
        wanted = self._wanted(folder, ids)
        replies = self._each([b"RETR %d" % n for _, n in wanted])
        for (uidl, _), data in zip(wanted, replies, strict=False):
            if data is None:
                continue
            raw, whole = whole_message(data, self._sizes.get(uidl))
            if not whole:
                log.warning(
                    "POP3 message %s: %d bytes read, %s listed; kept on the server",
                    uidl[:40],
                    len(data),
                    self._sizes.get(uidl),
                )
            yield RemoteMessage(remote_id=uidl, flags=frozenset(), raw=raw, size=len(raw))

    def _headers(self, folder: RemoteFolder, ids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """(uidl, header) by TOP n 0, pipelined like RETR; messages gone meanwhile skipped."""
        wanted = self._wanted(folder, ids)
        replies = self._each([b"TOP %d 0" % n for _, n in wanted])
        for (uidl, _), data in zip(wanted, replies, strict=False):
            if data is not None:
                yield uidl, data

    def ids_since(self, folder: RemoteFolder, day: date, ids: Iterable[str]) -> set[str]:
        """Of ``ids``, those that arrived on or after ``day``: the import filter's since-date.

        POP3 has no search: each message's header (TOP n 0) gives the date its server
        received it (the newest Received line), else its Date. A message with no readable
        date is kept: the filter never costs a message by mistake.
        """
        allowed: set[str] = set()
        for uidl, header in self._headers(folder, ids):
            arrived = arrival_day(header)
            if arrived is None or arrived >= day:
                allowed.add(uidl)
        return allowed

    def fetch_headers(self, folder: RemoteFolder, ids: list[str]) -> dict[str, tuple[str, int]]:
        """{uidl: (Message-ID without <>, LIST size)}, for ``crmail mailbox verify``."""
        return {
            uidl: (message_id_from_header(header), self._sizes.get(uidl, -1))
            for uidl, header in self._headers(folder, ids)
        }

    def acknowledge(self, folder: RemoteFolder, stored: Mapping[str, int]) -> None:
        """Messages crmail has committed ({uidl: size of the stored bytes}): delete each on
        the server, unless messages are kept there, when its size is the one LIST gave.

        The DELE commands go at ``close``, before QUIT: never between pipelined RETRs.
        """
        if self.config.keep_on_server:
            return
        for uidl, size in stored.items():
            number = self._numbers.get(uidl)
            if number is not None and self._sizes.get(uidl) == size:
                self._to_delete.append(number)


def arrival_day(header: bytes) -> date | None:
    """The day a message reached its server: the newest Received line's date, else Date."""
    parsed = BytesHeaderParser(policy=compat32).parsebytes(header)
    stamps = [r.rpartition(";")[2] for r in parsed.get_all("Received") or []]
    stamps.append(parsed.get("Date") or "")
    for stamp in stamps:
        try:
            return parsedate_to_datetime(str(stamp).strip()).date()
        except (TypeError, ValueError, IndexError):
            continue
    return None
