"""A POP3 session (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS): crmail's own reader.

Replies are read as the RFC frames them and nothing else: a status line that starts with
``+OK`` or ``-ERR``, then for multi-line replies every line up to the lone ``.``, of any
length, dot-unstuffed, line ends kept as sent. Anything else (a line that is not a status,
a line longer than ``imap_wire.MAX_LINE``, a connection cut mid-reply) means crmail no
longer knows where it is in the conversation: the socket is closed without QUIT, so the
server forgets every deletion of the session, and the caller gets a `DriverError`.
Decision 018 says why crmail does not use poplib.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator, Sequence

from .base import AuthFailed, ConnectFailed, DriverError, Throttled
from .imap_errors import APP_PASSWORD, WRONG_PASSWORD, is_app_password_host
from .imap_wire import Wire
from .net import tls_context, xoauth2_string

APP_PASSWORD_POP_HOSTS = (
    "pop.gmail.com",
    "pop.mail.yahoo.com",
    "pop.aol.com",
    "pop.zoho.com",
    "pop.fastmail.com",
)
# RFC 2449 §8 / RFC 3206: the server is busy with this mailbox or limits logins.
BUSY_CODES = (b"[IN-USE]", b"[LOGIN-DELAY]", b"[SYS/TEMP]")
TERMINATORS = (b".\r\n", b".\n")


class Pop3Refused(Exception):
    """The server answered ``-ERR`` (the conversation is still in step)."""

    def __init__(self, text: bytes) -> None:
        super().__init__(text.decode("utf-8", "replace").strip()[:300])
        self.text = text


def status(line: bytes) -> tuple[bool, bytes]:
    """A status line (RFC 1939 §3) → (ok, text). Anything else raises ValueError."""
    for word, ok in ((b"+OK", True), (b"-ERR", False)):
        if line.startswith(word):
            rest = line[len(word) :]
            if not rest or rest[:1] in (b" ", b"\r", b"\n"):
                return ok, rest.strip()
    raise ValueError(f"not a status line: {line[:40]!r}")


def listing(body: bytes) -> list[tuple[int, str]]:
    """The lines of a UIDL or LIST reply ("1 whatever") → [(number, word)]."""
    out: list[tuple[int, str]] = []
    for line in body.splitlines():
        number, _, rest = line.strip().partition(b" ")
        word = rest.strip()
        if not number.isdigit() or not word:
            raise ValueError(f"not a listing line: {line[:40]!r}")
        out.append((int(number), word.decode("ascii", "replace")))
    return out


def whole_message(data: bytes, listed: int | None) -> tuple[bytes, bool]:
    """RETR's bytes and the size LIST gave → (the message, read whole).

    RFC 1939 §3: a server ends a message that does not end in CRLF with one before the
    terminator; that CRLF is not part of the message and not counted by LIST. A message
    is whole when its bytes have the listed size (Dovecot counts CRLF line ends).
    """
    if listed is None:
        return data, False
    if len(data) == listed:
        return data, True
    if len(data) == listed + 2 and data.endswith(b"\r\n"):
        return data[:-2], True
    return data, False


class Pop3Session:
    """One POP3 connection: login, single- and multi-line commands, pipelining."""

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        *,
        timeout: float = 60.0,
        allow_self_signed: bool = False,
        cafile: str | None = None,
    ) -> None:
        self.host, self.port, self.security, self.timeout = host, port, security, timeout
        self.context = tls_context(allow_self_signed=allow_self_signed, cafile=cafile)
        self.capabilities: set[str] = set()
        self._wire: Wire | None = None

    @property
    def connected(self) -> bool:
        return self._wire is not None

    def connect(self) -> None:
        context = self.context if self.security == "tls" else None
        self._wire = Wire.open(self.host, self.port, self.timeout, context)
        try:
            ok, text = self._status()
            if not ok:
                raise ConnectFailed(
                    f"{self.host}:{self.port} turned the connection away: {_text(text)}",
                    kind="refused",
                )
            self.capabilities = self._capa()
            if self.security == "starttls":
                try:
                    self.command(b"STLS")
                except Pop3Refused as exc:
                    raise ConnectFailed(
                        f"{self.host}:{self.port} refused STARTTLS: {exc}", kind="tls"
                    ) from None
                self._wire.starttls(self.context, self.port)
                self.capabilities = self._capa()  # RFC 2595 §4: ask again over TLS
        except BaseException:
            self.abort()
            raise

    def _capa(self) -> set[str]:
        try:
            body = self.multiline(b"CAPA")
        except Pop3Refused:
            return set()
        words = (line.split(b" ")[0] for line in body.splitlines() if line.strip())
        return {w.decode("ascii", "replace").upper() for w in words}

    def login(self, user: str, password: str, oauth2_token: str = "") -> None:
        """USER/PASS, or AUTH XOAUTH2 with the token; failures in words."""
        try:
            if oauth2_token:
                self._xoauth2(user, oauth2_token)
            else:
                self.command(b"USER " + _arg(user))
                self.command(b"PASS " + _arg(password))
        except Pop3Refused as exc:
            if exc.text.upper().startswith(BUSY_CODES):
                raise Throttled(f"The server is busy or limits logins right now: {exc}") from None
            if oauth2_token:
                raise AuthFailed(
                    "The server refused the OAuth token: sign in to the provider "
                    f"again to renew access. (Server: {exc})",
                    kind="oauth_revoked",
                ) from None
            host = self.host.lower()
            said = str(exc).lower()
            hinted = "app" in said and "password" in said
            if hinted or host in APP_PASSWORD_POP_HOSTS or is_app_password_host(host):
                raise AuthFailed(f"{WRONG_PASSWORD} {APP_PASSWORD}", kind="app_password") from None
            raise AuthFailed(WRONG_PASSWORD) from None

    def _xoauth2(self, user: str, token: str) -> None:
        blob = base64.b64encode(xoauth2_string(user, token).encode())
        wire = self._need()
        self._send(b"AUTH XOAUTH2 " + blob + b"\r\n")
        line = self._line()
        if line.startswith(b"+ ") or line.rstrip(b"\r\n") == b"+":
            wire.send(b"\r\n")  # the challenge carries the error; answer empty, get -ERR
            line = self._line()
        if not self._parse_status(line)[0]:
            raise Pop3Refused(self._parse_status(line)[1])

    # -- commands -------------------------------------------------------------------------

    def command(self, cmd: bytes) -> bytes:
        """A single-line command; its +OK text, or `Pop3Refused`."""
        self._send(cmd + b"\r\n")
        ok, text = self._status()
        if not ok:
            raise Pop3Refused(text)
        return text

    def multiline(self, cmd: bytes) -> bytes:
        """A multi-line command (CAPA, UIDL, LIST); the reply's body, or `Pop3Refused`."""
        self._send(cmd + b"\r\n")
        ok, text = self._status()
        if not ok:
            raise Pop3Refused(text)
        return self._body()

    def pipeline(
        self, commands: Sequence[bytes], depth: int, *, multiline: bool = True
    ) -> Iterator[bytes | None]:
        """Commands, ``depth`` in flight (RFC 2449 PIPELINING): each reply in order, the
        body of a multi-line one (RETR, TOP) or the text of a single-line one (DELE),
        None for a ``-ERR``."""
        pending = 0
        try:
            for start in range(0, len(commands), depth):
                chunk = commands[start : start + depth]
                self._send(b"".join(c + b"\r\n" for c in chunk))
                pending = len(chunk)
                for _ in chunk:
                    ok, text = self._status()
                    body = (self._body() if multiline else text) if ok else None
                    pending -= 1
                    yield body
        finally:
            if pending and self._wire is not None:
                self._drain(pending, multiline)  # left early: read the replies on their way

    def _drain(self, count: int, multiline: bool) -> None:
        try:
            for _ in range(count):
                if self._status()[0] and multiline:
                    self._body()
        except DriverError:
            self.abort()

    def quit(self) -> None:
        """QUIT: the server applies this session's deletions now, and only now."""
        if self._wire is None:
            return
        try:
            self.command(b"QUIT")
        except (DriverError, Pop3Refused):
            pass
        finally:
            self.abort()

    def abort(self) -> None:
        """Close without QUIT: the server forgets this session's deletions."""
        if self._wire is not None:
            with contextlib.suppress(OSError):
                self._wire.close()
            self._wire = None

    # -- reading --------------------------------------------------------------------------

    def _need(self) -> Wire:
        if self._wire is None:
            raise DriverError(f"The connection to {self.host} is closed.", kind="disconnected")
        return self._wire

    def _send(self, data: bytes) -> None:
        try:
            self._need().send(data)
        except DriverError:
            self.abort()
            raise

    def _line(self) -> bytes:
        try:
            return self._need().read_raw_line()
        except DriverError:
            self.abort()
            raise

    def _status(self) -> tuple[bool, bytes]:
        return self._parse_status(self._line())

    def _parse_status(self, line: bytes) -> tuple[bool, bytes]:
        try:
            return status(line)
        except ValueError:
            raise self.broken("a reply that is neither +OK nor -ERR") from None

    def _body(self) -> bytes:
        """The lines of a multi-line reply up to the lone ".", dot-unstuffed, as sent."""
        parts: list[bytes] = []
        append = parts.append
        read = self._line
        while True:
            line = read()
            if line[:1] == b".":
                if line in TERMINATORS:
                    return b"".join(parts)
                line = line[1:]
            append(line)

    def broken(self, what: str) -> DriverError:
        """The conversation is out of step: drop it (no QUIT, so nothing is deleted)."""
        self.abort()
        return DriverError(
            f"The server {self.host} sent {what}; crmail closed the connection without "
            "deleting anything.",
            kind="protocol",
        )


def _arg(value: str) -> bytes:
    data = value.encode()
    if b"\r" in data or b"\n" in data:
        raise AuthFailed("The login name or password contains a line break.")
    return data


def _text(text: bytes) -> str:
    return text.decode("utf-8", "replace").strip()[:300]
