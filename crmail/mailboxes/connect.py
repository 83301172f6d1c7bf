"""Opening a protocol driver for a stored mailbox: the one place settings become a session."""

from __future__ import annotations

from crmail.mailboxes.drivers.base import AuthFailed, Driver, DriverError
from crmail.mailboxes.drivers.imap import ImapConfig, ImapDriver
from crmail.mailboxes.drivers.pop3 import Pop3Config, Pop3Driver
from crmail.mailboxes.drivers.smtp import SmtpClient, SmtpConfig
from crmail.mailboxes.models import AuthMethod, Mailbox, Protocol

# Protocols a driver exists for; other configured mailboxes are never opened.
SUPPORTED_PROTOCOLS = (Protocol.IMAP, Protocol.POP3)


def _credentials(mailbox: Mailbox) -> tuple[str, str]:
    """(password, oauth2 access token) for the incoming server."""
    if mailbox.auth_method == AuthMethod.OAUTH2:
        from crmail.mailboxes.oauth import access_token

        return "", access_token(mailbox)
    return mailbox.secret, ""


def open_driver(mailbox: Mailbox) -> Driver:
    """A connected, logged-in driver for ``mailbox``; raises ``DriverError`` in words.

    A mail server may refuse an OAuth access token the provider still deems valid (revoked
    on the server side, clocks apart): the token is renewed once before giving up.
    """
    try:
        return _open_driver(mailbox)
    except AuthFailed as exc:
        if mailbox.auth_method != AuthMethod.OAUTH2 or exc.kind != "oauth_revoked":
            raise
        from crmail.mailboxes.oauth import forget_access_token

        forget_access_token(mailbox)
        mailbox.refresh_from_db(fields=["access_token", "access_token_expires_at", "state"])
        return _open_driver(mailbox)


def _open_driver(mailbox: Mailbox) -> Driver:
    password, token = _credentials(mailbox)
    if mailbox.protocol == Protocol.IMAP:
        driver = ImapDriver(
            ImapConfig(
                host=mailbox.host,
                port=mailbox.port or 993,
                security=mailbox.security,
                login=mailbox.login,
                password=password or None,
                oauth2_token=token or None,
                allow_self_signed=mailbox.allow_self_signed,
            )
        )
        driver.connect()
        return driver
    if mailbox.protocol == Protocol.POP3:
        pop = Pop3Driver(
            Pop3Config(
                host=mailbox.host,
                port=mailbox.port or 995,
                security=mailbox.security,
                login=mailbox.login,
                password=password,
                oauth2_token=token,
                keep_on_server=mailbox.keep_on_server,
                allow_self_signed=mailbox.allow_self_signed,
            )
        )
        pop.connect()
        return pop
    raise DriverError(
        f"{mailbox.get_protocol_display()} mailboxes are not supported yet.", kind="unsupported"
    )


def smtp_client(mailbox: Mailbox) -> SmtpClient:
    """An SMTP session for sending as ``mailbox`` (not yet connected)."""
    if mailbox.smtp_same_credentials:
        login = mailbox.login
        password, token = _credentials(mailbox)
    else:
        login, password, token = mailbox.smtp_login, mailbox.smtp_secret, ""
    return SmtpClient(
        SmtpConfig(
            host=mailbox.smtp_host,
            port=mailbox.smtp_port or 465,
            security=mailbox.smtp_security,
            login=login,
            password=password,
            oauth2_token=token,
            allow_self_signed=mailbox.allow_self_signed,
        )
    )
