"""An asyncio IMAP session that watches one folder: log in, EXAMINE, IDLE (RFC 2177), NOOP.

The IDLE watcher keeps one of these per mailbox, a thousand on one event loop, where the
blocking `ImapSession` of the sync would need a thread each. It speaks only what watching
needs. Parsing is ``imap_protocol``'s, failures in words are ``imap_errors``', settings are
`ImapConfig`, and TLS contexts come from ``net``: it connects, logs in and fails in the
same words as the sync driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .base import AuthFailed, ConnectFailed, DriverError
from .imap_errors import command_failed, disconnected, login_failed, socket_failed, timed_out
from .imap_protocol import (
    ProtocolError,
    Response,
    code_numbers,
    line_may_have_literal,
    literal_size,
    parse_response,
    quote,
    xoauth2_initial_response,
)
from .imap_session import CHANGE_KINDS, ImapConfig, LiteralArg, caps_from_code

MAX_LINE = 1 << 20  # watching reads short lines; a longer one is refused
MAX_LITERAL = 1 << 20
KEEPALIVE = (60, 20, 3)  # TCP keepalive: idle seconds, interval, probes (dead peers found)


@dataclass(frozen=True)
class FolderState:
    """What EXAMINE reported (RFC 3501 §6.3.2, RFC 7162 §3.1.2.1)."""

    exists: int = 0
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None

    def newer_than(self, cursor: Mapping[str, Any] | None) -> bool:
        """True when the folder differs from a sync cursor, or there is none yet.

        UIDVALIDITY, UIDNEXT and (with CONDSTORE) HIGHESTMODSEQ cover new, removed and
        re-flagged messages; a value either side does not know is not compared.
        """
        if not cursor:
            return True
        return any(
            cursor.get(key) is not None and value is not None and int(cursor[key]) != value
            for key, value in (
                ("uidvalidity", self.uidvalidity),
                ("uidnext", self.uidnext),
                ("highestmodseq", self.highestmodseq),
            )
        )


class IdleSession:
    """One connection that logs in, EXAMINEs a folder and waits in IDLE for news.

    Use from one event loop: ``await open()``, ``await examine()``, then ``idle()`` /
    ``wait()`` / ``done()`` (or ``noop()`` where ``can_idle`` is false), ``abort()`` at the
    end. Every ``DriverError`` subclass means the session is unusable (close and reconnect)
    except `AuthFailed`, which will not go away by retrying.
    """

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self.capabilities: frozenset[str] = frozenset()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tag = 0
        self._idle_tag: bytes | None = None

    @property
    def can_idle(self) -> bool:
        return "IDLE" in self.capabilities

    # -- connecting -----------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, STARTTLS when asked, log in, and learn the logged-in capabilities."""
        cfg = self.config
        context = cfg.ssl_context() if cfg.security == "tls" else None
        try:
            async with asyncio.timeout(cfg.timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    cfg.host,
                    cfg.port,
                    ssl=context,
                    server_hostname=cfg.host if context else None,
                    limit=MAX_LINE,
                )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            raise socket_failed(cfg.host, cfg.port, exc, cfg.timeout) from None
        _keepalive(self._writer.get_extra_info("socket"))
        async with self._deadline():
            greeting = await self._read()
            if greeting.tag is not None or greeting.kind not in (b"OK", b"PREAUTH"):
                raise disconnected(cfg.host, greeting.text_str())
            caps = caps_from_code(greeting)
            if cfg.security == "starttls":
                caps = await self._starttls(caps)
            if greeting.kind != b"PREAUTH":
                caps = await self._login(caps or await self._capability())
            # RFC 3501 §6.1.1: the list after login is the one that counts (often longer).
            self.capabilities = caps or await self._capability()

    async def _starttls(self, caps: frozenset[str]) -> frozenset[str]:
        cfg = self.config
        if "STARTTLS" not in (caps or await self._capability()):
            raise ConnectFailed(
                f"{cfg.host}:{cfg.port} does not offer STARTTLS: choose TLS or another port.",
                kind="tls",
            )
        await self._command([b"STARTTLS"], "STARTTLS")
        assert self._reader is not None and self._writer is not None
        # Bytes after the OK but before the handshake would be plaintext injected into the
        # TLS session (CVE-2011-0411 and kin): refuse them.
        if getattr(self._reader, "_buffer", b""):
            raise DriverError("The server sent data before the TLS handshake.", kind="tls")
        try:
            await self._writer.start_tls(cfg.ssl_context(), server_hostname=cfg.host)
        except (OSError, TimeoutError) as exc:
            raise socket_failed(cfg.host, cfg.port, exc, cfg.timeout) from None
        return frozenset()  # RFC 3501 §6.2.1: forget what was said in plaintext

    async def _capability(self) -> frozenset[str]:
        found: list[str] = []

        def collect(resp: Response) -> None:
            if resp.kind == b"CAPABILITY":
                found.extend(t.decode("ascii", "replace").upper() for t in resp.data if t)

        tagged = await self._command([b"CAPABILITY"], "CAPABILITY", collect)
        return frozenset(found) or caps_from_code(tagged)

    async def _login(self, caps: frozenset[str]) -> frozenset[str]:
        """LOGIN (RFC 3501 §6.2.3) or AUTHENTICATE XOAUTH2, as the sync driver logs in."""
        cfg = self.config
        seen: list[Response] = []
        if cfg.oauth2_token:
            if "AUTH=XOAUTH2" not in caps:
                raise AuthFailed(
                    "The server does not offer OAuth 2 logins (XOAUTH2).", kind="oauth_unsupported"
                )
            tagged = await self._xoauth2(caps, seen.append)
        else:
            if "LOGINDISABLED" in caps:
                raise ConnectFailed(
                    "The server accepts logins only over TLS: choose TLS or STARTTLS.", kind="tls"
                )
            user, password = cfg.login.encode(), (cfg.password or "").encode()
            args = [quote(user) or LiteralArg(user), quote(password) or LiteralArg(password)]
            tagged = await self._command(
                [b"LOGIN ", args[0], b" ", args[1]], "LOGIN", seen.append, check=False, caps=caps
            )
        if tagged.kind != b"OK":
            raise login_failed(cfg.host, tagged, oauth=bool(cfg.oauth2_token))
        for resp in seen:
            if resp.kind == b"CAPABILITY":
                return frozenset(t.decode("ascii", "replace").upper() for t in resp.data if t)
        return caps_from_code(tagged)

    async def _xoauth2(self, caps: frozenset[str], handler: Callable[[Response], None]) -> Response:
        token = xoauth2_initial_response(self.config.login, self.config.oauth2_token or "")
        tag = self._next_tag()
        sasl_ir = "SASL-IR" in caps
        await self._send(tag + b" AUTHENTICATE XOAUTH2" + (b" " + token if sasl_ir else b""))
        sent = sasl_ir
        while True:
            resp = await self._read()
            if resp.tag == tag:
                return resp
            if resp.tag == b"+":
                # The first challenge asks for the token; a later one carries the error and
                # wants an empty answer before the tagged NO.
                await self._send(b"" if sent else token)
                sent = True
            elif resp.tag is None:
                handler(resp)
            else:
                raise self._out_of_step(resp)

    # -- watching -------------------------------------------------------------------------

    async def examine(self, folder: bytes = b"INBOX") -> FolderState:
        """EXAMINE (read-only: nothing is marked read), with CONDSTORE when offered."""
        values: dict[str, int] = {}

        def collect(resp: Response) -> None:
            if resp.kind == b"EXISTS":
                values["exists"] = resp.number or 0
            elif resp.kind == b"OK" and resp.code in (b"UIDVALIDITY", b"UIDNEXT", b"HIGHESTMODSEQ"):
                values[resp.code.decode().lower()] = int(code_numbers(resp)[0])

        parts = [b"EXAMINE ", quote(folder) or LiteralArg(folder)]
        if "CONDSTORE" in self.capabilities:
            parts.append(b" (CONDSTORE)")
        async with self._deadline():
            await self._command(parts, "opening the Inbox", collect)
        return FolderState(**values)

    async def idle(self) -> None:
        """Enter IDLE and wait for the server's continuation (RFC 2177 §3)."""
        tag = self._next_tag()
        async with self._deadline():
            await self._send(tag + b" IDLE")
            while (resp := await self._read()).tag != b"+":
                if resp.tag == tag:
                    raise command_failed("IDLE", resp)
                if resp.tag is not None:
                    raise self._out_of_step(resp)
        self._idle_tag = tag

    async def wait(self, timeout: float) -> bool:
        """Wait in IDLE up to ``timeout`` seconds; True as soon as something changed.

        Only waiting for a line's start is cut short by the timeout, so a response is
        never read halfway: the rest of it is read under the session timeout.
        """
        if self._idle_tag is None:
            raise DriverError("wait() outside IDLE.", kind="protocol")
        reader = self._need_reader()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                async with asyncio.timeout(left):
                    line = await self._line_from(reader.readuntil(b"\n"))
            except TimeoutError:
                return False
            async with self._deadline():
                resp = await self._rest(line)
            if resp.tag == self._idle_tag:  # the server ended IDLE by itself
                self._idle_tag = None
                raise command_failed("IDLE", resp)
            if resp.tag is not None:
                raise self._out_of_step(resp)
            if resp.kind in CHANGE_KINDS:
                return True
        return False

    async def done(self) -> bool:
        """Leave IDLE (DONE); True if a change was reported meanwhile."""
        tag, self._idle_tag = self._idle_tag, None
        if tag is None:
            return False
        changed = False
        async with self._deadline():
            await self._send(b"DONE")
            while (resp := await self._read()).tag != tag:
                if resp.tag is not None:
                    raise self._out_of_step(resp)
                changed = changed or resp.kind in CHANGE_KINDS
        return changed

    async def noop(self) -> bool:
        """NOOP (RFC 3501 §6.1.2), polling for servers without IDLE; True on news."""
        changed = False

        def note(resp: Response) -> None:
            nonlocal changed
            changed = changed or resp.kind in CHANGE_KINDS

        async with self._deadline():
            await self._command([b"NOOP"], "NOOP", note)
        return changed

    def abort(self) -> None:
        """Say goodbye without waiting for an answer (DONE, LOGOUT) and close the socket."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        with contextlib.suppress(Exception):
            if not writer.is_closing():
                goodbye = b"DONE\r\n" if self._idle_tag is not None else b""
                writer.write(goodbye + self._next_tag() + b" LOGOUT\r\n")
            writer.close()
        self._idle_tag = None

    # -- the wire -------------------------------------------------------------------------

    def _deadline(self) -> Any:
        """A timeout for one exchange; hitting it becomes ``ConnectFailed(kind="timeout")``."""
        return _Deadline(self.config.host, self.config.timeout)

    def _next_tag(self) -> bytes:
        self._tag += 1
        return b"W%d" % self._tag

    def _out_of_step(self, resp: Response) -> DriverError:
        """A tagged answer to no command in flight, or a continuation nobody asked for:
        the conversation is lost. The session is unusable; the watcher reconnects."""
        what = "a continuation request" if resp.tag == b"+" else "an answer to no command"
        return DriverError(
            f"The server {self.config.host} sent {what}; crmail closed the connection.",
            kind="protocol",
        )

    def _need_reader(self) -> asyncio.StreamReader:
        if self._reader is None:
            raise disconnected(self.config.host)
        return self._reader

    async def _send(self, line: bytes) -> None:
        writer = self._writer
        if writer is None:
            raise disconnected(self.config.host)
        try:
            writer.write(line + b"\r\n")
            await writer.drain()
        except (OSError, RuntimeError) as exc:
            raise disconnected(self.config.host) from exc

    async def _command(
        self,
        parts: Iterable[bytes],
        what: str,
        handler: Callable[[Response], None] | None = None,
        *,
        check: bool = True,
        caps: frozenset[str] | None = None,
    ) -> Response:
        """Send a tagged command (literals per LITERAL+ or after a continuation request)
        and read until its tagged answer; untagged responses go to ``handler``."""
        caps = self.capabilities if caps is None else caps
        tag = self._next_tag()
        line = tag + b" "
        for part in parts:
            if not isinstance(part, LiteralArg):
                line += part
            elif "LITERAL+" in caps:
                line += b"{%d+}\r\n" % len(part) + part
            else:
                await self._send(line + b"{%d}" % len(part))
                while (resp := await self._read()).tag != b"+":
                    if resp.tag == tag:
                        raise command_failed(what, resp)
                    if resp.tag is not None:
                        raise self._out_of_step(resp)
                line = bytes(part)
        await self._send(line)
        while True:
            resp = await self._read()
            if resp.tag == tag:
                if check and resp.kind != b"OK":
                    raise command_failed(what, resp)
                return resp
            if resp.tag is not None:
                raise self._out_of_step(resp)
            if handler is not None:
                handler(resp)

    async def _read(self) -> Response:
        reader = self._need_reader()
        return await self._rest(await self._line_from(reader.readuntil(b"\n")))

    async def _line_from(self, pending: Any) -> bytes:
        try:
            line: bytes = await pending
        except asyncio.IncompleteReadError:
            raise disconnected(self.config.host) from None
        except asyncio.LimitOverrunError:
            raise DriverError("The server sent a line that is too long.", kind="protocol") from None
        except OSError as exc:
            raise disconnected(self.config.host) from exc
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    async def _rest(self, line: bytes) -> Response:
        """The literals and lines that complete a response starting with ``line``."""
        segments = [line]
        if line_may_have_literal(line):
            reader = self._need_reader()
            while (n := literal_size(line)) is not None:
                if n > MAX_LITERAL:
                    raise DriverError("The server sent an unexpected literal.", kind="protocol")
                try:
                    segments.append(await reader.readexactly(n))
                except (asyncio.IncompleteReadError, OSError):
                    raise disconnected(self.config.host) from None
                line = await self._line_from(reader.readuntil(b"\n"))
                segments.append(line)
        try:
            resp = parse_response(segments)
        except ProtocolError as exc:
            raise DriverError(
                f"The server sent an unreadable response ({exc}).", kind="protocol"
            ) from None
        if resp.kind == b"BYE" and resp.tag is None:
            raise disconnected(self.config.host, resp.text_str())
        return resp


class _Deadline:
    """``async with``: the body must finish within ``seconds`` or raise a timeout in words."""

    def __init__(self, host: str, seconds: float) -> None:
        self.host, self.seconds = host, seconds
        self._timeout = asyncio.timeout(seconds)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(self, *exc: Any) -> bool:
        try:
            await self._timeout.__aexit__(*exc)
        except TimeoutError:
            raise timed_out(self.host, self.seconds) from None
        return False


def _keepalive(sock: Any) -> None:
    """TCP keepalive, so a peer that vanished without a FIN is noticed within minutes."""
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        idle, interval, count = KEEPALIVE
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
