"""An IMAP4rev1 session (RFC 3501): connect, STARTTLS, login, tagged commands, SELECT, IDLE.

The socket work is in ``imap_wire``, parsing in ``imap_protocol``, failures in words in
``imap_errors``; ``imap.ImapDriver`` adds the sync operations. Not thread-safe: one
thread uses one session.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType

from .base import AuthFailed, ConnectFailed, DriverError, RemoteFolder
from .imap_errors import command_failed, disconnected, login_failed
from .imap_protocol import (
    FetchItem,
    ProtocolError,
    Response,
    code_numbers,
    encode_mutf7,
    parse_fetch,
    parse_response,
    quote,
    search_uids,
    vanished_set,
    xoauth2_initial_response,
)
from .imap_wire import Wire
from .net import tls_context

log = logging.getLogger(__name__)

SECURITY = ("tls", "starttls", "none")
META_DEPTH = 4
CHANGE_KINDS = frozenset({b"EXISTS", b"EXPUNGE", b"FETCH", b"VANISHED", b"RECENT"})


@dataclass(frozen=True)
class ImapConfig:
    """Where and how to log in. ``repr`` never shows the password or token."""

    host: str
    port: int = 993
    security: str = "tls"  # "tls" (implicit, 993), "starttls" (143), "none"
    login: str = ""
    password: str | None = field(default=None, repr=False)
    oauth2_token: str | None = field(default=None, repr=False)  # XOAUTH2 when given
    allow_self_signed: bool = False  # skip certificate checks (own servers only)
    cafile: str | None = None  # extra trusted CA (tests, private CAs)
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.security not in SECURITY:
            raise ValueError(f"security must be one of {SECURITY}, not {self.security!r}")

    def ssl_context(self) -> ssl.SSLContext:
        """System CA store (plus ``cafile``), hostname checked, unless self-signed allowed."""
        return tls_context(allow_self_signed=self.allow_self_signed, cafile=self.cafile)


class LiteralArg(bytes):
    """A command argument sent as a literal (RFC 3501 §4.3; LITERAL+ per RFC 7888)."""


@dataclass
class SelectInfo:
    """What SELECT/EXAMINE reported (RFC 3501 §6.3.1, RFC 7162 §3.1.2 and §3.2.5)."""

    exists: int = 0
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None
    nomodseq: bool = False
    vanished: list[bytes] = field(default_factory=list)
    fetches: list[FetchItem] = field(default_factory=list)


Handler = Callable[[Response], None]


class ImapSession:
    """One logged-in IMAP session: commands, pipelining, SELECT, IDLE state.

    `ImapDriver` builds the sync operations on top of it.
    """

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self._wire: Wire | None = None
        self._caps: frozenset[str] = frozenset()
        self._tag = 0
        self._selected: str | None = None
        self._writable = False
        self._qresync = False
        self._condstore = False
        self._raw_names: dict[str, bytes] = {}
        self._folders: list[RemoteFolder] | None = None
        self._size_hints: dict[str, dict[int, int]] = {}  # folder → {uid: RFC822.SIZE}
        self._inflight: deque[bytes] = deque()  # tags owned by a suspended fetch()
        self._owner: object | None = None
        self._idle_tag: bytes | None = None
        self._idle_since = 0.0
        self._idle_changed = False

    # -- session --------------------------------------------------------------------------

    def __enter__(self) -> ImapSession:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def capabilities(self) -> frozenset[str]:
        """The logged-in CAPABILITY list, upper-case (connects if needed)."""
        self.connect()
        return self._caps

    @property
    def connected(self) -> bool:
        return self._wire is not None

    def connect(self) -> None:
        """Connect, secure, log in, learn capabilities and ENABLE QRESYNC/CONDSTORE."""
        if self._wire is not None:
            return
        cfg = self.config
        context = cfg.ssl_context() if cfg.security == "tls" else None
        self._wire = Wire.open(cfg.host, cfg.port, cfg.timeout, context)
        self._tag = 0
        self._selected = None
        try:
            self._handshake()
        except BaseException:
            self._drop()
            raise

    def _handshake(self) -> None:
        cfg = self.config
        greeting = self._read()
        if greeting.kind == b"BYE" or greeting.tag is not None:
            raise disconnected(cfg.host, greeting.text_str())
        caps = caps_from_code(greeting)
        if cfg.security == "starttls":
            caps = caps or self._capability()
            if "STARTTLS" not in caps:
                raise ConnectFailed(
                    f"{cfg.host}:{cfg.port} does not offer STARTTLS: choose TLS or another port.",
                    kind="tls",
                )
            self._run([b"STARTTLS"], "STARTTLS")
            assert self._wire is not None
            self._wire.starttls(cfg.ssl_context(), cfg.port)
            caps = frozenset()  # RFC 3501 §6.2.1: forget what was said in plaintext
        if greeting.kind != b"PREAUTH":
            caps = caps or self._capability()
            caps = self._login(caps)
        # RFC 3501 §6.1.1: the list after login is the one that counts (often longer).
        self._caps = caps or self._capability()
        self._enable()

    def _capability(self) -> frozenset[str]:
        found: list[str] = []

        def collect(resp: Response) -> None:
            if resp.kind == b"CAPABILITY":
                found.extend(t.decode("ascii", "replace").upper() for t in resp.data if t)

        tagged = self._run([b"CAPABILITY"], "CAPABILITY", collect)
        return frozenset(found) or caps_from_code(tagged)

    def _login(self, caps: frozenset[str]) -> frozenset[str]:
        """LOGIN (RFC 3501 §6.2.3) or AUTHENTICATE XOAUTH2 (RFC 4959 SASL-IR when offered)."""
        cfg = self.config
        seen: list[Response] = []
        if cfg.oauth2_token:
            if "AUTH=XOAUTH2" not in caps:
                raise AuthFailed(
                    "The server does not offer OAuth 2 logins (XOAUTH2).", kind="oauth_unsupported"
                )
            tagged = self._authenticate_xoauth2(caps, seen.append)
        else:
            if "LOGINDISABLED" in caps:
                raise ConnectFailed(
                    "The server accepts logins only over TLS: choose TLS or STARTTLS.", kind="tls"
                )
            user, password = cfg.login.encode(), (cfg.password or "").encode()
            args = [quote(user) or LiteralArg(user), quote(password) or LiteralArg(password)]
            tagged = self._run(
                [b"LOGIN ", args[0], b" ", args[1]], "LOGIN", seen.append, check=False
            )
        if tagged.kind != b"OK":
            raise login_failed(cfg.host, tagged, oauth=bool(cfg.oauth2_token))
        log.debug("logged in to %s", cfg.host)
        for resp in seen:
            if resp.kind == b"CAPABILITY":
                return frozenset(t.decode("ascii", "replace").upper() for t in resp.data if t)
        return caps_from_code(tagged)

    def _authenticate_xoauth2(self, caps: frozenset[str], handler: Handler) -> Response:
        token = xoauth2_initial_response(self.config.login, self.config.oauth2_token or "")
        tag = self._next_tag()
        wire = self._need_wire()
        if "SASL-IR" in caps:
            wire.send(tag + b" AUTHENTICATE XOAUTH2 " + token + b"\r\n")
            sent = True
        else:
            wire.send(tag + b" AUTHENTICATE XOAUTH2\r\n")
            sent = False
        while True:
            resp = self._read()
            if resp.tag == tag:
                return resp
            if resp.tag == b"+":
                # The first challenge asks for the token; a later one carries the error
                # (base64 JSON) and wants an empty answer before the tagged NO.
                wire.send(b"\r\n" if sent else token + b"\r\n")
                sent = True
            elif resp.tag is None:
                handler(resp)

    def _enable(self) -> None:
        """ENABLE QRESYNC (RFC 7162 §3.2.3), else CONDSTORE (§3.1) when offered."""
        caps = self._caps
        want = b"QRESYNC" if "QRESYNC" in caps else b"CONDSTORE" if "CONDSTORE" in caps else None
        enabled: set[bytes] = set()
        if want and "ENABLE" in caps:

            def collect(resp: Response) -> None:
                if resp.kind == b"ENABLED":
                    enabled.update(t.upper() for t in resp.data if isinstance(t, bytes))

            self._run([b"ENABLE ", want], "ENABLE", collect, check=False)
        self._qresync = b"QRESYNC" in enabled
        self._condstore = self._qresync or "CONDSTORE" in caps

    def close(self) -> None:
        """LOGOUT (RFC 3501 §6.1.3) and close the socket; safe to call twice."""
        if self._wire is None:
            return
        try:
            if not self._inflight:
                if self._idle_tag is not None:
                    self.idle_done()
                self._wire.sock.settimeout(min(self.config.timeout, 5.0))
                self._run([b"LOGOUT"], "LOGOUT", check=False)
        except (DriverError, OSError):
            pass
        finally:
            self._drop()

    def _drop(self) -> None:
        if self._wire is not None:
            self._wire.close()
        self._wire = None
        self._selected = None
        self._size_hints = {}
        self._inflight.clear()
        self._owner = None
        self._idle_tag = None

    def fileno(self) -> int:
        """The socket's descriptor, for select()/poll() over many idling drivers."""
        return self._need_wire().fileno()

    # -- commands -------------------------------------------------------------------------

    def _need_wire(self) -> Wire:
        if self._wire is None:
            self.connect()
        assert self._wire is not None
        return self._wire

    def _next_tag(self) -> bytes:
        self._tag += 1
        return b"C%d" % self._tag

    def _read(self) -> Response:
        wire = self._wire
        if wire is None:
            raise disconnected(self.config.host)
        try:
            resp = parse_response(wire.read_response())
        except ProtocolError as exc:
            self._drop()
            raise DriverError(
                f"The server sent an unreadable response ({exc}).", kind="protocol"
            ) from None
        except DriverError:  # cut off, timed out, a line too long: never read on
            self._drop()
            raise
        if resp.kind == b"BYE" and resp.tag is None:
            self._drop()
            raise disconnected(self.config.host, resp.text_str())
        return resp

    def _settle(self) -> None:
        """Before a new command: finish an abandoned fetch's commands, leave IDLE."""
        if self._idle_tag is not None:
            self.idle_done()
        while self._inflight:
            resp = self._read()
            if resp.tag is not None and resp.tag in self._inflight:
                self._inflight.remove(resp.tag)
            elif resp.tag is not None:
                raise self._out_of_step(resp)
        self._owner = None

    def _out_of_step(self, resp: Response) -> DriverError:
        """A tagged answer to no command in flight, or a continuation nobody asked for:
        crmail no longer knows where it is in the conversation. Drop it, never read on."""
        self._drop()
        what = "a continuation request" if resp.tag == b"+" else "an answer to no command"
        return DriverError(
            f"The server {self.config.host} sent {what}; crmail closed the connection.",
            kind="protocol",
        )

    def _send(self, parts: Iterable[bytes], handler: Handler | None = None) -> bytes:
        """Send one tagged command; literals per LITERAL+ or after a continuation request."""
        wire = self._need_wire()
        tag = self._next_tag()
        chunks: list[bytes] = [tag, b" "]
        for part in parts:
            if not isinstance(part, LiteralArg):
                chunks.append(part)
            elif "LITERAL+" in self._caps or ("LITERAL-" in self._caps and len(part) <= 4096):
                chunks += [b"{%d+}\r\n" % len(part), part]
            else:
                chunks.append(b"{%d}\r\n" % len(part))
                wire.send(b"".join(chunks))
                chunks = []
                while (resp := self._read()).tag != b"+":
                    if resp.tag == tag:
                        raise command_failed("the command", resp)
                    if resp.tag is not None:
                        raise self._out_of_step(resp)
                    if handler is not None:
                        handler(resp)
                chunks.append(part)
        chunks.append(b"\r\n")
        wire.send(b"".join(chunks))
        return tag

    def _run(
        self,
        parts: list[bytes],
        what: str,
        handler: Handler | None = None,
        *,
        check: bool = True,
    ) -> Response:
        """Send a command and read until its tagged answer; untagged ones go to ``handler``."""
        self._settle()
        tag = self._send(parts, handler)
        while True:
            resp = self._read()
            if resp.tag == tag:
                if check and resp.kind != b"OK":
                    raise command_failed(what, resp)
                return resp
            if resp.tag is not None:
                raise self._out_of_step(resp)
            if handler is not None:
                handler(resp)

    def _run_many(
        self, commands: Iterable[list[bytes]], what: str, handler: Handler, depth: int = META_DEPTH
    ) -> None:
        """Pipeline commands, at most ``depth`` in flight (RFC 3501 §5.5)."""
        self._settle()
        pending: deque[bytes] = deque()
        todo = iter(commands)
        failure: Response | None = None
        while True:
            while len(pending) < depth and (parts := next(todo, None)) is not None:
                pending.append(self._send(parts, handler))
            if not pending:
                break
            resp = self._read()
            if resp.tag is None:
                handler(resp)
            elif resp.tag in pending:
                pending.remove(resp.tag)
                if resp.kind != b"OK" and not expunge_issued(resp):
                    failure = failure or resp
            else:
                raise self._out_of_step(resp)
        if failure is not None:
            raise command_failed(what, failure)

    def _mailbox(self, folder: RemoteFolder | str) -> bytes:
        """The mailbox argument: the listed raw name, else modified UTF-7 (RFC 3501 §5.1.3)."""
        name = folder.remote_id if isinstance(folder, RemoteFolder) else folder
        raw = self._raw_names.get(name)
        if raw is None:
            raw = b"INBOX" if name.upper() == "INBOX" else encode_mutf7(name).encode("ascii")
        return quote(raw) or LiteralArg(raw)

    @staticmethod
    def _name(folder: RemoteFolder | str) -> str:
        return folder.remote_id if isinstance(folder, RemoteFolder) else folder

    def _select(
        self, folder: RemoteFolder | str, *, write: bool, qresync: tuple[int, int] | None = None
    ) -> SelectInfo:
        """SELECT or EXAMINE, with (QRESYNC (uidvalidity modseq)) or (CONDSTORE)."""
        info = SelectInfo()

        def collect(resp: Response) -> None:
            nonlocal info
            if resp.kind == b"OK" and resp.code:
                if resp.code == b"CLOSED":  # RFC 7162 §3.2.11: earlier lines were the old box
                    info = SelectInfo()
                elif resp.code in (b"UIDVALIDITY", b"UIDNEXT", b"HIGHESTMODSEQ"):
                    value = int(code_numbers(resp)[0])
                    setattr(info, resp.code.decode().lower(), value)
                elif resp.code == b"NOMODSEQ":
                    info.nomodseq = True
            elif resp.kind == b"EXISTS":
                info.exists = resp.number or 0
            elif resp.kind == b"VANISHED":
                earlier, uids = vanished_set(resp)
                if earlier:
                    info.vanished.append(uids)
            elif resp.kind == b"FETCH":
                info.fetches.append(parse_fetch(resp))

        parts = [b"SELECT " if write else b"EXAMINE ", self._mailbox(folder)]
        if qresync is not None:
            parts.append(b" (QRESYNC (%d %d))" % qresync)
        elif self._condstore:
            parts.append(b" (CONDSTORE)")
        self._selected = None
        self._run(parts, f"opening the folder {self._name(folder)}", collect)
        self._selected, self._writable = self._name(folder), write
        return info

    def _ensure_selected(self, folder: RemoteFolder | str, *, write: bool) -> None:
        if self._wire is None or self._selected != self._name(folder):
            self._select(folder, write=write)
        elif write and not self._writable:
            self._select(folder, write=True)

    def _search(self, criteria: bytes) -> list[int]:
        """UID SEARCH, compact with ESEARCH (RFC 4731 §3.1) when offered."""
        found: list[int] = []

        def collect(resp: Response) -> None:
            if resp.kind in (b"SEARCH", b"ESEARCH"):
                found.extend(search_uids(resp))

        esearch = b"RETURN (ALL) " if "ESEARCH" in self._caps else b""
        self._run([b"UID SEARCH " + esearch + criteria], "searching messages", collect)
        return sorted(set(found))

    def _all_uids(self, info: SelectInfo) -> list[int]:
        return self._search(b"ALL") if info.exists else []

    def _uids_from(self, first: int, info: SelectInfo) -> list[int]:
        """UIDs ≥ first. "n:*" always matches the highest UID even when it is < n: filter."""
        if not info.exists:
            return []
        return [u for u in self._search(b"UID %d:*" % first) if u >= first]

    def _enter_idle(self) -> None:
        tag = self._send([b"IDLE"])
        while (resp := self._read()).tag != b"+":
            if resp.tag == tag:
                raise command_failed("IDLE", resp)
            if resp.tag is not None:
                raise self._out_of_step(resp)
            self._note_idle(resp)
        self._idle_tag = tag
        self._idle_since = time.monotonic()

    def _note_idle(self, resp: Response) -> None:
        if resp.tag is None and resp.kind in CHANGE_KINDS:
            self._idle_changed = True

    def idle_check(self) -> bool:
        """Read what has arrived, without blocking; True once anything changed."""
        wire = self._wire
        if wire is None or self._idle_tag is None:
            raise DriverError("idle_check() without idle_start().", kind="protocol")
        try:
            while wire.response_ready():
                resp = self._read()
                if resp.tag is not None:  # IDLE's own tag only ends it after DONE
                    raise self._out_of_step(resp)
                self._note_idle(resp)
        except ConnectFailed:
            self._drop()
            raise
        return self._idle_changed

    def idle_done(self) -> bool:
        """Leave IDLE (DONE); True if anything changed since idle_start()."""
        tag = self._idle_tag
        if tag is None or self._wire is None:
            return self._idle_changed
        self._idle_tag = None
        self._wire.send(b"DONE\r\n")
        while (resp := self._read()).tag != tag:
            if resp.tag is not None:
                raise self._out_of_step(resp)
            self._note_idle(resp)
        return self._idle_changed


# -- helpers shared with imap.py -----------------------------------------------------------------


def ignore(_resp: Response) -> None:
    return None


def caps_from_code(resp: Response) -> frozenset[str]:
    if resp.code == b"CAPABILITY":
        return frozenset(w.decode("ascii", "replace").upper() for w in resp.code_data.split())
    return frozenset()


def expunge_issued(resp: Response) -> bool:
    """NO [EXPUNGEISSUED] (RFC 5530 §3): some messages went away meanwhile; not an error."""
    return resp.kind == b"NO" and resp.code == b"EXPUNGEISSUED"
