"""Sending over SMTP (RFC 5321) with implicit TLS (465), STARTTLS (587) or none.

Password (PLAIN/LOGIN) or OAuth 2 (XOAUTH2). Failures come back as ``DriverError`` kinds
with words a user can act on; the password and token never appear in them.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from .base import AuthFailed, ConnectFailed, DriverError, Sends, Throttled
from .imap_errors import APP_PASSWORD, WRONG_PASSWORD, socket_failed
from .net import tls_context, xoauth2_string

APP_PASSWORD_SMTP_HOSTS = (
    "smtp.gmail.com",
    "smtp.office365.com",
    "smtp.mail.yahoo.com",
    "smtp.mail.me.com",
    "smtp.aol.com",
    "smtp.zoho.com",
    "smtp.fastmail.com",
)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # "tls", "starttls" or "none"
    login: str = ""
    password: str = ""
    oauth2_token: str = ""
    allow_self_signed: bool = False
    cafile: str | None = None
    timeout: float = 30.0

    def __repr__(self) -> str:  # never show secrets in logs or tracebacks
        return f"SmtpConfig(host={self.host!r}, port={self.port}, security={self.security!r})"


class SmtpClient(Sends):
    """One SMTP session: ``with SmtpClient(cfg) as c: c.send(...)``."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Connect, secure and authenticate; raise a ``DriverError`` explaining a failure."""
        cfg = self.config
        context = tls_context(allow_self_signed=cfg.allow_self_signed, cafile=cfg.cafile)
        try:
            if cfg.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
                smtp.ehlo()
                if cfg.security == "starttls":
                    if not smtp.has_extn("starttls"):
                        smtp.close()
                        raise ConnectFailed(
                            f"{cfg.host}:{cfg.port} does not offer STARTTLS: choose SSL/TLS or "
                            "another port.",
                            kind="tls",
                        )
                    smtp.starttls(context=context)
                    smtp.ehlo()
        except DriverError:
            raise
        except smtplib.SMTPServerDisconnected as exc:
            raise ConnectFailed(
                f"{cfg.host}:{cfg.port} closed the connection at once: check "
                "the port and the security setting (465 is SSL/TLS, 587 is "
                "STARTTLS).",
                kind="disconnected",
            ) from exc
        except (OSError, ssl.SSLError, smtplib.SMTPException, UnicodeError) as exc:
            raise _connect_error(cfg, exc) from None
        self._smtp = smtp
        try:
            self._authenticate()
        except BaseException:
            self.close()
            raise

    def _authenticate(self) -> None:
        cfg, smtp = self.config, self._smtp
        assert smtp is not None
        if not cfg.login:
            return
        try:
            if cfg.oauth2_token:
                token = cfg.oauth2_token
                smtp.auth(
                    "XOAUTH2",
                    lambda challenge=None: xoauth2_string(cfg.login, token),
                    initial_response_ok=True,
                )
            else:
                smtp.login(cfg.login, cfg.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise _auth_error(cfg, exc) from None
        except smtplib.SMTPNotSupportedError:
            raise AuthFailed(
                f"{cfg.host} offers no login on this connection: choose SSL/TLS or STARTTLS.",
                kind="auth_unsupported",
            ) from None
        except smtplib.SMTPException as exc:
            raise DriverError(f"The server refused the login: {_text(exc)}") from None

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> None:
        """Send ``raw`` to ``recipients``; raise when any recipient is refused."""
        if self._smtp is None:
            self.connect()
        smtp = self._smtp
        assert smtp is not None
        try:
            refused = smtp.sendmail(sender, list(recipients), raw)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DriverError(
                "The server refused every recipient: " + _refusals(exc.recipients),
                kind="recipients",
            ) from None
        except smtplib.SMTPSenderRefused as exc:
            raise DriverError(
                f"The server refused the sender address {sender}: {_text(exc)}", kind="sender"
            ) from None
        except smtplib.SMTPDataError as exc:
            if 400 <= exc.smtp_code < 500:
                raise Throttled(f"The server asks to try later: {_text(exc)}") from None
            raise DriverError(
                f"The server refused the message: {_text(exc)}", kind="rejected"
            ) from None
        except smtplib.SMTPServerDisconnected:
            raise ConnectFailed(
                f"{self.config.host} closed the connection while sending.", kind="disconnected"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _connect_error(self.config, exc) from None
        if refused:
            raise DriverError(
                "The server refused some recipients: " + _refusals(refused), kind="recipients"
            )

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None


def _text(exc: smtplib.SMTPException) -> str:
    """The server's answer (code and words), or what smtplib says went wrong."""
    if not isinstance(exc, smtplib.SMTPResponseException):
        return str(exc)[:300]
    message = exc.smtp_error
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{exc.smtp_code} {text}"[:300]


def _refusals(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{addr} ({code} {msg.decode('utf-8', 'replace')[:100]})"
        for addr, (code, msg) in recipients.items()
    )


def _auth_error(cfg: SmtpConfig, exc: smtplib.SMTPAuthenticationError) -> DriverError:
    text = _text(exc)
    if cfg.oauth2_token:
        return AuthFailed(
            "The server refused the OAuth token: sign in to the provider again "
            f"to renew access. (Server: {text})",
            kind="oauth_revoked",
        )
    lowered = text.lower()
    if (
        "application-specific" in lowered
        or "app password" in lowered
        or cfg.host.lower() in APP_PASSWORD_SMTP_HOSTS
    ):
        return AuthFailed(f"{WRONG_PASSWORD} {APP_PASSWORD} (Server: {text})", kind="app_password")
    return AuthFailed(f"{WRONG_PASSWORD} (Server: {text})")


def _connect_error(cfg: SmtpConfig, exc: BaseException) -> DriverError:
    if isinstance(exc, smtplib.SMTPConnectError):
        return ConnectFailed(
            f"{cfg.host}:{cfg.port} refused the session: {_text(exc)}", kind="refused"
        )
    if isinstance(exc, OSError | ssl.SSLError | socket.timeout | UnicodeError):
        return socket_failed(cfg.host, cfg.port, exc, cfg.timeout)
    return DriverError(f"SMTP failed: {exc.__class__.__name__}")
