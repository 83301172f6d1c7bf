"""An in-process SMTP sink (aiosmtpd) on loopback that records what it receives."""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .certs import CertPair, generate_self_signed
from .dovecot import HOST, free_port

TlsMode = Literal["starttls", "implicit"]


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: envelope, raw DATA bytes and session facts."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str] = field(default_factory=list)
    rcpt_options: list[str] = field(default_factory=list)
    auth_user: str | None = None
    tls: bool = False
    peer: Any = None


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # auth_required is enforced here: aiosmtpd's own option warns when TLS is optional.
        if self.sink.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if self.sink.mail_response:  # a server refusing the sender, as providers do
            return self.sink.mail_response
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        response = self.sink.data_response
        if not response.startswith("2"):
            return response
        data = envelope.original_content
        if data is None:
            raw = envelope.content
            data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw or b""
        auth_user = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth_user = session.auth_data.login.decode("utf-8", "replace")
        self.sink._record(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=bytes(data),
                mail_options=list(envelope.mail_options),
                rcpt_options=list(envelope.rcpt_options),
                auth_user=auth_user,
                tls=server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
                peer=session.peer,
            )
        )
        return response


class SmtpSink:
    """aiosmtpd `Controller` on 127.0.0.1 collecting every accepted message.

    `username`/`password` enable AUTH PLAIN/LOGIN (also without TLS);
    `auth_required` then rejects unauthenticated MAIL. `tls="starttls"` offers
    STARTTLS on the port, `tls="implicit"` wraps the port in TLS (SMTPS); the
    self-signed certificate is at `cert_path`. Set `data_response` (e.g.
    "451 4.3.0 try later") to make DATA fail, `mail_response` (e.g. "553 5.7.1 Sender
    address rejected") to refuse MAIL FROM; nothing is recorded then.
    """

    host = HOST

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        auth_required: bool = False,
        tls: TlsMode | None = None,
        require_starttls: bool = False,
        hostname: str = "sink.test",
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        if tls not in (None, "starttls", "implicit"):
            raise ValueError(f"tls must be None, 'starttls' or 'implicit', not {tls!r}")
        self.username = username
        self.password = password
        self.auth_required = auth_required
        self.tls = tls
        self.require_starttls = require_starttls
        self.hostname = hostname
        self.port: int | None = None
        self.cert: CertPair | None = None
        self.data_response = "250 OK"
        self.mail_response = ""  # e.g. "553 5.7.1 Sender address rejected" refuses MAIL FROM
        self.auth_attempts: list[tuple[str, str, bool]] = []  # (mechanism, login, success)
        self._messages: list[ReceivedMessage] = []
        self._cond = threading.Condition()
        self._controller: Controller | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def cert_path(self) -> Path | None:
        """PEM certificate (use as CA file) when TLS is enabled."""
        return self.cert.cert_path if self.cert else None

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Snapshot of the messages received so far."""
        with self._cond:
            return list(self._messages)

    def _record(self, message: ReceivedMessage) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget received messages and auth attempts."""
        with self._cond:
            self._messages.clear()
            self.auth_attempts.clear()

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least `count` messages arrived; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"SMTP sink got {len(self._messages)} of {count} messages in {timeout}s"
                    )
                self._cond.wait(remaining)
            return list(self._messages)

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        ok = (
            self.username is not None
            and login == self.username
            and auth_data.password.decode("utf-8", "replace") == self.password
        )
        self.auth_attempts.append((mechanism, login, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def start(self) -> SmtpSink:
        """Start listening; returns self."""
        if self._controller is not None:
            raise RuntimeError("already started")
        kwargs: dict[str, Any] = {
            "server_hostname": self.hostname,
            "auth_require_tls": False,
        }
        if self.username is not None:
            kwargs["authenticator"] = self._authenticate
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="crmail-smtp-")
            self.cert = generate_self_signed(self._tmp.name, name="smtp")
            context = self.cert.server_context()
            if self.tls == "implicit":
                kwargs["ssl_context"] = context
            else:
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = self.require_starttls
        last_error: Exception | None = None
        for _attempt in range(3):
            self.port = free_port()
            controller = Controller(_Handler(self), hostname=HOST, port=self.port, **kwargs)
            try:
                controller.start()
            except Exception as exc:  # port taken in the meantime: retry
                last_error = exc
                with contextlib.suppress(Exception):
                    controller.stop(no_assert=True)
                continue
            self._controller = controller
            return self
        self._cleanup()
        raise RuntimeError(f"SMTP sink did not start: {last_error!r}")

    def stop(self) -> None:
        """Stop listening and remove the certificate directory."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
