"""IMAP failures in words: which `DriverError` a socket, TLS or server answer becomes.

Pure functions (no I/O) so each wording is tested on its own. Messages never contain the
password or token: they are built from the host, the port and the server's own text.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl

from .base import AuthFailed, ConnectFailed, DriverError, Throttled
from .imap_protocol import Response

WRONG_PASSWORD = "The server refused the login name or password."  # noqa: S105
APP_PASSWORD = "This provider needs an app password when two-factor authentication is on."  # noqa: S105
# Providers that refuse normal passwords once two-factor authentication is on.
APP_PASSWORD_HOSTS = (
    "imap.gmail.com",
    "outlook.office365.com",
    "imap.mail.yahoo.com",
    "imap.mail.me.com",
    "imap.aol.com",
    "imap.zoho.com",
    "imap.fastmail.com",
)
_APP_PASSWORD_HINT = re.compile(
    r"app(lication)?[- ]?specific password|app[- ]password|web ?login|"
    r"log ?in via (your )?web|web browser|two[- ]?(factor|step)|2fa|2-step|second factor",
    re.IGNORECASE,
)
_THROTTLE_HINT = re.compile(
    r"bandwidth|too many (simultaneous )?connections|rate limit|throttl|"
    r"exceeded (the )?(command|bandwidth)|try again later",
    re.IGNORECASE,
)
# OpenSSL X509_V_ERR_* codes (x509_vfy.h)
_SELF_SIGNED = {18, 19}  # DEPTH_ZERO_SELF_SIGNED_CERT, SELF_SIGNED_CERT_IN_CHAIN
_EXPIRED = {9, 10}  # CERT_NOT_YET_VALID, CERT_HAS_EXPIRED
_HOSTNAME_MISMATCH = 62


def _server_text(resp: Response, limit: int = 300) -> str:
    text = resp.text_str()
    return text[:limit]


def is_app_password_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host == h or host.endswith("." + h) for h in APP_PASSWORD_HOSTS)


def login_failed(host: str, resp: Response, *, oauth: bool) -> DriverError:
    """A NO/BAD answer to LOGIN or AUTHENTICATE, in words (RFC 5530 codes, RFC 3501 §7.1)."""
    text = _server_text(resp)
    code = resp.code or b""
    if code in (b"UNAVAILABLE",) or _THROTTLE_HINT.search(text):
        return Throttled(f"The server is busy or limits logins right now: {text}", kind="throttled")
    if oauth:
        return AuthFailed(
            "The server refused the OAuth token: sign in to the provider again "
            f"to renew access. (Server: {text})",
            kind="oauth_revoked",
        )
    if _APP_PASSWORD_HINT.search(text):
        return AuthFailed(f"{WRONG_PASSWORD} {APP_PASSWORD} (Server: {text})", kind="app_password")
    if is_app_password_host(host):
        return AuthFailed(f"{WRONG_PASSWORD} {APP_PASSWORD}", kind="app_password")
    if code == b"ALERT":  # RFC 3501 §7.1: an ALERT must be shown to the user
        return AuthFailed(f"{WRONG_PASSWORD} (Server: {text})")
    if code in (b"PRIVACYREQUIRED",):
        return ConnectFailed(
            "The server accepts this login only over TLS: choose TLS or STARTTLS.", kind="tls"
        )
    return AuthFailed(WRONG_PASSWORD)


def command_failed(what: str, resp: Response) -> DriverError:
    """A NO/BAD answer to any other command."""
    text = _server_text(resp)
    code = resp.code or b""
    if code in (b"LIMIT", b"THROTTLED") or _THROTTLE_HINT.search(text):
        return Throttled(f"The server asks to slow down ({what}): {text}")
    if code == b"OVERQUOTA":
        return DriverError(f"The mailbox is over its quota ({what}): {text}", kind="quota")
    if code == b"NONEXISTENT" or (what.startswith("open") and code in (b"", b"TRYCREATE")):
        return DriverError(
            f"The folder does not exist on the server ({what}): {text}", kind="folder"
        )
    if resp.kind == b"BAD":
        return DriverError(f"The server did not understand {what}: {text}", kind="protocol")
    return DriverError(f"The server refused {what}: {text}", kind="refused_command")


def socket_failed(host: str, port: int, exc: BaseException, timeout: float) -> ConnectFailed:
    """An error while connecting (before or during TLS) in words."""
    where = f"{host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return tls_verify_failed(host, exc)
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        return ConnectFailed(
            f"The TLS handshake with {where} failed ({reason}): check the port and the "
            "security setting (993 is implicit TLS, 143 is STARTTLS).",
            kind="tls",
        )
    # UnicodeError: a name DNS cannot spell (a stray control character, a label too long).
    if isinstance(exc, socket.gaierror | UnicodeError):
        return ConnectFailed(
            f"The server name {host} could not be found: check its spelling.", kind="unreachable"
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailed(
            f"{where} refused the connection: check the port and the security setting.",
            kind="refused",
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return ConnectFailed(f"{where} did not answer within {timeout:g} seconds.", kind="timeout")
    if isinstance(exc, OSError) and exc.errno in (
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.EADDRNOTAVAIL,
    ):
        return ConnectFailed(f"{where} cannot be reached from here.", kind="unreachable")
    if isinstance(exc, ConnectionError | EOFError):
        return disconnected(host)
    return ConnectFailed(
        f"Could not connect to {where}: {exc.__class__.__name__}.", kind="unreachable"
    )


def tls_verify_failed(host: str, exc: ssl.SSLCertVerificationError) -> ConnectFailed:
    """Which certificate check failed, and the fix for self-signed certificates only."""
    code = getattr(exc, "verify_code", None)
    if code == _HOSTNAME_MISMATCH:
        msg = f"The server's TLS certificate is not valid for the host name {host}."
    elif code in _SELF_SIGNED:
        msg = (
            "The server's TLS certificate is self-signed, so it is not trusted. If this is "
            'your own server and you trust it, turn on "allow self-signed certificate".'
        )
    elif code in _EXPIRED:
        msg = "The server's TLS certificate has expired or is not valid yet."
    else:
        detail = getattr(exc, "verify_message", "") or "unknown reason"
        msg = f"The server's TLS certificate is not trusted ({detail})."
    return ConnectFailed(msg, kind="tls")


def disconnected(host: str, text: str = "") -> ConnectFailed:
    extra = f": {text}" if text else "."
    return ConnectFailed(f"The server {host} closed the connection{extra}", kind="disconnected")


def timed_out(host: str, timeout: float) -> ConnectFailed:
    return ConnectFailed(
        f"The server {host} did not answer within {timeout:g} seconds.", kind="timeout"
    )
