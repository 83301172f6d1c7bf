"""crmail's own mail: verification codes, and later scheduled reports and reminders.

It goes out through the SMTP server an administrator names in ``CRMAIL_SMTP_URL``, never
through a user's mailbox, so that it works before anyone has connected one:

- ``smtp://user:password@host:587`` — STARTTLS, required (the default for ``smtp://``);
- ``smtps://user:password@host:465`` — TLS from the first byte;
- ``smtp://relay.internal:25?tls=none`` — a relay inside the network, no TLS, no login;
- ``…?ca=/etc/ssl/internal-ca.pem`` — trust that CA too (a relay with a certificate of
  the organisation's own).

``CRMAIL_MAIL_FROM`` is its From address (by default the SMTP login when that is an
address, else ``crmail@`` the SMTP server's domain).
The message is built by ``compose.build_message`` like every other message crmail
writes, so a header with CR or LF is refused there; stdlib ``smtplib`` sends it.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from dataclasses import dataclass

from django.conf import settings

from crmail.config import env
from crmail.mail.compose import ComposeError, Draft, build_message

DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
TIMEOUT_SECONDS = 30


class SystemMailError(Exception):
    """crmail could not send its own mail; the message says why in words."""


@dataclass(frozen=True)
class Relay:
    """Where crmail's own mail goes, read from ``CRMAIL_SMTP_URL``."""

    host: str
    port: int
    user: str
    password: str
    tls: str  # "starttls", "implicit" or "none"
    ca: str = ""  # a CA file to trust besides the system's (an internal relay's own CA)

    def __repr__(self) -> str:  # never show the password in logs or tracebacks
        return f"Relay({self.host}:{self.port}, tls={self.tls}, login={bool(self.user)})"


def relay(url: str) -> Relay:
    """Read an SMTP URL; ``env.ConfigError`` says what is wrong with it."""
    parts = env.parse_url(url, setting="CRMAIL_SMTP_URL")
    if parts.scheme not in DEFAULT_PORTS or not parts.host:
        raise env.ConfigError(
            "CRMAIL_SMTP_URL must be smtp://[user:password@]host[:port] (STARTTLS) or "
            f"smtps://… (TLS), such as smtp://crmail:secret@mail.example.com:587 (it names "
            f"{parts.scheme or 'no'} scheme and {'a' if parts.host else 'no'} host)"
        )
    tls = "implicit" if parts.scheme == "smtps" else parts.options.get("tls", "starttls")
    if tls not in ("starttls", "none", "implicit"):
        raise env.ConfigError(f"CRMAIL_SMTP_URL: tls= may be starttls or none, not {tls!r}")
    return Relay(
        host=parts.host,
        port=parts.port or DEFAULT_PORTS[parts.scheme],
        user=parts.user,
        password=parts.password,
        tls=tls,
        ca=parts.options.get("ca", ""),
    )


def configured() -> bool:
    """Whether crmail can send mail of its own (``CRMAIL_SMTP_URL`` is set)."""
    return bool(settings.CRMAIL_SMTP_URL)


def sender_address() -> str:
    """The From address of crmail's own mail: ``CRMAIL_MAIL_FROM``, else the SMTP login
    when it is an address (servers often insist on that), else ``crmail@`` the server's
    domain; "" when none of these gives one."""
    if settings.CRMAIL_MAIL_FROM:
        return str(settings.CRMAIL_MAIL_FROM)
    if not configured():
        return ""
    where = relay(settings.CRMAIL_SMTP_URL)
    if "@" in where.user:
        return where.user
    try:
        ipaddress.ip_address(where.host)
    except ValueError:
        labels = where.host.split(".")
        return f"crmail@{'.'.join(labels[-2:])}" if len(labels) >= 2 else ""
    return ""


def send(to: str, subject: str, text: str) -> None:
    """Send a plain-text message from crmail to one address, or raise ``SystemMailError``."""
    if not configured():
        raise SystemMailError(
            "crmail has no server for its own mail: an administrator sets CRMAIL_SMTP_URL "
            "(for example smtp://user:password@mail.example.com:587)"
        )
    try:
        where, sender = relay(settings.CRMAIL_SMTP_URL), sender_address()
        if not sender:
            raise SystemMailError(
                f"crmail's own mail needs a From address: an administrator sets "
                f"CRMAIL_MAIL_FROM (its server {where.host} names no domain to use)"
            )
        message, recipients = build_message(
            Draft(sender=sender, sender_name="crmail", to=[to], subject=subject, text=text)
        )
    except (env.ConfigError, ComposeError) as exc:
        raise SystemMailError(str(exc)) from None
    try:
        with _session(where) as smtp:
            smtp.send_message(message, from_addr=sender, to_addrs=recipients)
    except smtplib.SMTPAuthenticationError:
        raise SystemMailError(
            f"the mail server {where.host} refused crmail's login (CRMAIL_SMTP_URL)"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()), (0, b""))
        raise SystemMailError(
            f"the mail server {where.host} refused {to}: {code} {_said(reply)}"
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise SystemMailError(
            f"the mail server {where.host} refused the message: {exc.smtp_code} "
            f"{_said(exc.smtp_error)}"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SystemMailError(
            f"crmail could not reach its mail server {where.host}:{where.port} ({exc})"
        ) from None


def _session(where: Relay) -> smtplib.SMTP:
    """A connected session, TLS and login done as the URL says."""
    context = ssl.create_default_context(cafile=where.ca or None)
    if where.tls == "implicit":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            where.host, where.port, timeout=TIMEOUT_SECONDS, context=context
        )
    else:
        smtp = smtplib.SMTP(where.host, where.port, timeout=TIMEOUT_SECONDS)
    try:
        if where.tls == "starttls":
            smtp.starttls(context=context)
        if where.user:
            smtp.login(where.user, where.password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _said(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
