"""POP3 (RFC 1939, RFC 2449 capabilities, RFC 2595 STLS): one-way, by UIDL.

One folder, "INBOX". ``changes`` lists every UIDL (the engine skips the ones it stored);
``fetch`` retrieves with RETR, several commands in flight when the server offers
PIPELINING; ``acknowledge`` deletes what crmail has committed, unless messages are kept
on the server. Deletions take effect at QUIT (``close``), so a crash deletes nothing.
"""

from __future__ import annotations

import contextlib
import poplib
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from typing import Any

from .base import AuthFailed, ConnectFailed, DriverError, FolderDelta, RemoteFolder, RemoteMessage
from .imap_errors import APP_PASSWORD, WRONG_PASSWORD, is_app_password_host, socket_failed
from .net import tls_context, xoauth2_string

INBOX = RemoteFolder(remote_id="INBOX", name="Inbox", role="inbox")
PIPELINE_DEPTH = 50
APP_PASSWORD_POP_HOSTS = (
    "pop.gmail.com",
    "pop.mail.yahoo.com",
    "pop.aol.com",
    "pop.zoho.com",
    "pop.fastmail.com",
)


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


class Pop3Driver:
    """A POP3 session implementing the ``Driver`` interface."""

    one_way = True  # messages removed on the server stay in crmail

    def __init__(self, config: Pop3Config) -> None:
        self.config = config
        self._pop: poplib.POP3 | None = None
        self._numbers: dict[str, int] = {}
        self.capabilities: set[str] = set()

    def __enter__(self) -> Pop3Driver:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        cfg = self.config
        context = tls_context(allow_self_signed=cfg.allow_self_signed, cafile=cfg.cafile)
        try:
            if cfg.security == "tls":
                pop: poplib.POP3 = poplib.POP3_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=context
                )
            else:
                pop = poplib.POP3(cfg.host, cfg.port, timeout=cfg.timeout)
                if cfg.security == "starttls":
                    pop.stls(context=context)
        except poplib.error_proto as exc:
            raise ConnectFailed(
                f"{cfg.host}:{cfg.port} refused STARTTLS or answered unexpectedly: {_text(exc)}",
                kind="tls",
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise socket_failed(cfg.host, cfg.port, exc, cfg.timeout) from None
        self._pop = pop
        try:
            self.capabilities = {k.upper() for k in pop.capa()}
        except poplib.error_proto:
            self.capabilities = set()
        try:
            self._login(pop)
        except BaseException:
            self._abort()
            raise

    def _login(self, pop: poplib.POP3) -> None:
        cfg = self.config
        try:
            if cfg.oauth2_token:
                import base64

                blob = base64.b64encode(xoauth2_string(cfg.login, cfg.oauth2_token).encode())
                pop._shortcmd("AUTH XOAUTH2 " + blob.decode())
            else:
                pop.user(cfg.login)
                pop.pass_(cfg.password)
        except poplib.error_proto as exc:
            text = _text(exc)
            if cfg.oauth2_token:
                raise AuthFailed(
                    "The server refused the OAuth token: sign in to the provider "
                    f"again to renew access. (Server: {text})",
                    kind="oauth_revoked",
                ) from None
            host = cfg.host.lower()
            hinted = "app" in text.lower() and "password" in text.lower()
            if hinted or host in APP_PASSWORD_POP_HOSTS or is_app_password_host(host):
                raise AuthFailed(f"{WRONG_PASSWORD} {APP_PASSWORD}", kind="app_password") from None
            raise AuthFailed(WRONG_PASSWORD) from None
        except (OSError, EOFError) as exc:
            raise socket_failed(cfg.host, cfg.port, exc, cfg.timeout) from None

    @property
    def pop(self) -> poplib.POP3:
        if self._pop is None:
            self.connect()
        assert self._pop is not None
        return self._pop

    def close(self) -> None:
        """QUIT: the server applies deletions now, and only now."""
        if self._pop is None:
            return
        try:
            self._pop.quit()
        except (OSError, poplib.error_proto):
            self._abort()
        self._pop = None

    def _abort(self) -> None:
        """Drop the connection without QUIT: the server forgets pending deletions."""
        if self._pop is not None:
            with contextlib.suppress(OSError):
                self._pop.sock.close()
            self._pop = None

    def list_folders(self) -> list[RemoteFolder]:
        return [INBOX]

    def changes(self, folder: RemoteFolder, cursor: dict[str, Any] | None) -> FolderDelta:
        """Every UIDL on the server; the engine fetches those it has not stored."""
        try:
            _, lines, _ = self.pop.uidl()
        except poplib.error_proto as exc:
            raise DriverError(
                "The server does not support UIDL, which crmail needs to "
                f"download each message once: {_text(exc)}",
                kind="protocol",
            ) from None
        except (OSError, EOFError) as exc:
            raise self._socket_error(exc) from None
        self._numbers = {}
        order: list[str] = []
        for line in lines:
            number, _, uidl = line.decode("ascii", "replace").partition(" ")
            uidl = uidl.strip()
            if uidl and uidl not in self._numbers:
                self._numbers[uidl] = int(number)
                order.append(uidl)
        return FolderDelta(cursor={"count": len(order)}, new_ids=order)

    def fetch(self, folder: RemoteFolder, ids: list[str]) -> Iterator[RemoteMessage]:
        """RETR each id, ``PIPELINE_DEPTH`` commands in flight when PIPELINING is offered."""
        if not self._numbers:
            self.changes(folder, None)
        wanted = [(i, self._numbers[i]) for i in ids if i in self._numbers]
        depth = PIPELINE_DEPTH if "PIPELINING" in self.capabilities else 1
        pop = self.pop
        try:
            for start in range(0, len(wanted), depth):
                chunk = wanted[start : start + depth]
                pop.sock.sendall(b"".join(b"RETR %d\r\n" % n for _, n in chunk))
                for uidl, _ in chunk:
                    try:
                        _, lines, _ = pop._getlongresp()
                    except poplib.error_proto:
                        continue  # deleted meanwhile by another client
                    raw = b"\r\n".join(lines) + b"\r\n"
                    yield RemoteMessage(remote_id=uidl, flags=frozenset(), raw=raw, size=len(raw))
        except (OSError, EOFError) as exc:
            raise self._socket_error(exc) from None

    def ids_since(self, folder: RemoteFolder, day: date, ids: Iterable[str]) -> set[str]:
        """Of ``ids``, those that arrived on or after ``day``: the import filter's since-date.

        POP3 has no search: each message's header (TOP n 0, pipelined like RETR) gives the
        date its server received it (the newest Received line), else its Date. A message
        with no readable date is kept: the filter never costs a message by mistake.
        """
        if not self._numbers:
            self.changes(folder, None)
        wanted = [(i, self._numbers[i]) for i in ids if i in self._numbers]
        depth = PIPELINE_DEPTH if "PIPELINING" in self.capabilities else 1
        pop = self.pop
        allowed: set[str] = set()
        try:
            for start in range(0, len(wanted), depth):
                chunk = wanted[start : start + depth]
                pop.sock.sendall(b"".join(b"TOP %d 0\r\n" % n for _, n in chunk))
                for uidl, _ in chunk:
                    try:
                        _, lines, _ = pop._getlongresp()
                    except poplib.error_proto:
                        continue  # deleted meanwhile
                    arrived = arrival_day(b"\r\n".join(lines))
                    if arrived is None or arrived >= day:
                        allowed.add(uidl)
        except (OSError, EOFError) as exc:
            raise self._socket_error(exc) from None
        return allowed

    def _socket_error(self, exc: BaseException) -> DriverError:
        return socket_failed(self.config.host, self.config.port, exc, self.config.timeout)

    def acknowledge(self, folder: RemoteFolder, ids: list[str]) -> None:
        """Messages crmail has committed: delete them on the server unless kept there."""
        if self.config.keep_on_server:
            return
        for uidl in ids:
            number = self._numbers.get(uidl)
            if number is None:
                continue
            try:
                self.pop.dele(number)
            except poplib.error_proto:
                continue


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


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else b""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text[:300]
