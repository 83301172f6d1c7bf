"""Opening a protocol driver for a stored mailbox: the one place settings become a session.

``DRIVERS`` says which driver class serves each protocol; ``can(mailbox, capability)``
asks that class, without connecting, for one of the capabilities of ``drivers.base``
(the rest of crmail never asks for a protocol by name).

Providers allow a few simultaneous connections per account (``Preset.max_connections``).
Each driver opened here holds one of that many connection slots, leases in the database
that every worker shares, until it is closed; when all are taken, opening fails in words
with kind ``busy`` and the job tries again later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from crmail.jobs import leases
from crmail.mailboxes.drivers.base import AuthFailed, Driver, DriverError, WaitsForNews
from crmail.mailboxes.drivers.gmail import GmailConfig, GmailDriver
from crmail.mailboxes.drivers.graph import GraphConfig, GraphDriver, graph_api_url
from crmail.mailboxes.drivers.imap import ImapConfig, ImapDriver
from crmail.mailboxes.drivers.pop3 import Pop3Config, Pop3Driver
from crmail.mailboxes.drivers.smtp import SmtpClient, SmtpConfig
from crmail.mailboxes.models import AuthMethod, Mailbox, Protocol
from crmail.mailboxes.providers import CUSTOM, preset, preset_for_host

# The driver class of each protocol; mailboxes of other protocols are never opened.
DRIVERS: dict[str, type[Driver]] = {
    Protocol.IMAP: ImapDriver,
    Protocol.POP3: Pop3Driver,
    Protocol.GMAIL: GmailDriver,
    Protocol.GRAPH: GraphDriver,
}
SUPPORTED_PROTOCOLS = tuple(DRIVERS)


def can(mailbox: Mailbox, capability: type) -> bool:
    """True when ``mailbox``'s driver offers ``capability`` (a protocol class of
    ``drivers.base``, such as ``SetsFlags``); asked of its class: nothing connects."""
    driver = DRIVERS.get(mailbox.protocol)
    return driver is not None and issubclass(driver, capability)


def protocols_that(capability: type) -> list[str]:
    """The protocols whose driver offers ``capability`` (for queries over mailboxes)."""
    return [protocol for protocol, driver in DRIVERS.items() if issubclass(driver, capability)]


def _credentials(mailbox: Mailbox) -> tuple[str, str]:
    """(password, oauth2 access token) for the incoming server."""
    if mailbox.auth_method == AuthMethod.OAUTH2:
        from crmail.mailboxes.oauth import access_token

        return "", access_token(mailbox)
    return mailbox.secret, ""


# A live question, which someone waits on with a page open, gives up on a provider's
# errors sooner than a sync: a provider's pause up to this long is waited out, a server
# error is asked again once.
LIVE_MAX_WAIT = 2.0


def open_driver(
    mailbox: Mailbox, slot: ConnectionSlot | None = None, *, live: bool = False
) -> Driver:
    """A connected, logged-in driver for ``mailbox``; raises ``DriverError`` in words.
    ``live``: for a question someone waits on (``LIVE_MAX_WAIT``; Gmail and Graph).

    It holds a connection slot (``slot``, else one taken here) until it is closed; a
    caller that passes its own slot renews it during long work.
    A mail server may refuse an OAuth access token the provider still deems valid (revoked
    on the server side, clocks apart): the token is renewed once before giving up.
    """
    slot = slot or ConnectionSlot.take(mailbox)
    try:
        try:
            driver = _open_driver(mailbox, slot.release, live)
        except AuthFailed as exc:
            if mailbox.auth_method != AuthMethod.OAUTH2 or exc.kind != "oauth_revoked":
                raise
            from crmail.mailboxes.oauth import forget_access_token

            forget_access_token(mailbox)
            mailbox.refresh_from_db(fields=["access_token", "access_token_expires_at", "state"])
            driver = _open_driver(mailbox, slot.release, live)
    except BaseException:
        slot.release()
        raise
    return driver


def max_connections(mailbox: Mailbox) -> int:
    """How many connections at once ``mailbox``'s provider allows for one account."""
    known = preset(mailbox.provider)
    return (known if known is not CUSTOM else preset_for_host(mailbox.host)).max_connections


def daily_transfer_cap(mailbox: Mailbox) -> int | None:
    """Bytes a day the provider lets ``mailbox`` download over IMAP or POP3 (Gmail's
    2.5 GB), or None; API access is limited by quotas the API reports itself."""
    if mailbox.protocol not in (Protocol.IMAP, Protocol.POP3):
        return None
    return preset(mailbox.provider).daily_bytes


def is_watched(mailbox: Mailbox) -> bool:
    """True when the IDLE watcher keeps a connection to ``mailbox``'s Inbox: a driver
    that waits for news, and a provider that allows a second connection for syncs and
    changes."""
    return can(mailbox, WaitsForNews) and max_connections(mailbox) >= 2


class ConnectionSlot:
    """One of the provider's simultaneous connections for a mailbox, held as a lease."""

    TTL = timedelta(minutes=10)

    def __init__(self, name: str, holder: str) -> None:
        self.name, self.holder = name, holder

    @classmethod
    def take(cls, mailbox: Mailbox) -> ConnectionSlot:
        if mailbox.pk is None:  # testing a configuration before it is saved
            return cls("", "")
        holder = leases.unique_identity()
        limit = cls.limit(mailbox)
        for n in range(limit):
            name = f"mailbox-connection:{mailbox.pk}:{n}"
            if leases.acquire(name, holder, cls.TTL):
                return cls(name, holder)
        raise DriverError(
            f"All {limit} connections the provider allows at once for {mailbox.email} are in "
            "use; crmail tries again shortly.",
            kind="busy",
        )

    @staticmethod
    def limit(mailbox: Mailbox) -> int:
        """Slots for ``mailbox``: the provider's limit, less the IDLE watcher's connection."""
        return max_connections(mailbox) - (1 if is_watched(mailbox) else 0)

    def renew(self) -> None:
        if self.name:
            leases.acquire(self.name, self.holder, self.TTL)

    def release(self) -> None:
        if self.name:
            leases.release(self.name, self.holder)


def imap_config(
    mailbox: Mailbox, *, password: str = "", token: str = "", timeout: float | None = None
) -> ImapConfig:
    """The IMAP settings of ``mailbox`` (the sync's driver and the IDLE watcher share it)."""
    config = ImapConfig(
        host=mailbox.host,
        port=mailbox.port or 993,
        security=mailbox.security,
        login=mailbox.login,
        password=password or None,
        oauth2_token=token or None,
        allow_self_signed=mailbox.allow_self_signed,
    )
    return config if timeout is None else replace(config, timeout=timeout)


def graph_config(mailbox: Mailbox) -> GraphConfig:
    """Microsoft Graph for ``mailbox``: its access token, asked for again at each use so a
    long sync renews it (``oauth.access_token`` keeps it while it lasts)."""
    if mailbox.auth_method != AuthMethod.OAUTH2:
        raise AuthFailed(
            "Microsoft Graph mailboxes sign in with Microsoft: connect this mailbox again "
            "with “Sign in with Microsoft”.",
            kind="auth_unsupported",
        )
    return GraphConfig(token=lambda: _credentials(mailbox)[1], base_url=graph_api_url())


def _open_driver(mailbox: Mailbox, on_close: Callable[[], None], live: bool = False) -> Driver:
    if mailbox.protocol == Protocol.GRAPH:
        config = graph_config(mailbox)
        if live:
            config = replace(config, max_wait=LIVE_MAX_WAIT)
        graph = GraphDriver(config, on_close=on_close)
        try:
            graph.connect()
        except BaseException:
            graph.close()
            raise
        return graph
    password, token = _credentials(mailbox)
    if mailbox.protocol == Protocol.IMAP:
        driver = ImapDriver(imap_config(mailbox, password=password, token=token), on_close=on_close)
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
            ),
            on_close=on_close,
        )
        pop.connect()
        return pop
    if mailbox.protocol == Protocol.GMAIL:
        if not token:
            raise AuthFailed("A Gmail API mailbox signs in with Google: connect it again.")
        gmail_config = GmailConfig(email=mailbox.email, token=token)
        if live:
            gmail_config = replace(gmail_config, max_wait=LIVE_MAX_WAIT, server_retries=1)
        gmail = GmailDriver(
            gmail_config,
            renew_token=lambda: _renewed_token(mailbox),
            on_close=on_close,
        )
        gmail.connect()
        return gmail
    raise DriverError(
        f"{mailbox.get_protocol_display()} mailboxes are not supported yet.", kind="unsupported"
    )


def _renewed_token(mailbox: Mailbox) -> str:
    """A new access token for an API session whose token the provider refused."""
    from crmail.mailboxes.oauth import access_token, forget_access_token

    forget_access_token(mailbox)
    mailbox.refresh_from_db(fields=["access_token", "access_token_expires_at", "state"])
    return access_token(mailbox)


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
