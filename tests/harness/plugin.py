"""pytest fixtures for real mail servers (register with `pytest_plugins`).

Fixtures:
    dovecot             session-scoped DovecotServer (plain IMAP/POP3, CONDSTORE on).
    dovecot_user        function-scoped fresh (name, password) on `dovecot`.
    dovecot_factory     function-scoped factory: dovecot_factory(**DovecotServer options).
    smtp_sink           function-scoped SmtpSink (no AUTH, no TLS).
    smtp_sink_factory   function-scoped factory: smtp_sink_factory(**SmtpSink options).
    dns_server          function-scoped DnsServer: test zones on a loopback port (UDP+TCP).
    silent_dns          function-scoped SilentDns: a DNS server that never answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .dns import DnsServer, SilentDns
from .dovecot import DovecotServer
from .smtp import SmtpSink

__all__ = [
    "dns_server",
    "dovecot",
    "dovecot_factory",
    "dovecot_user",
    "silent_dns",
    "smtp_sink",
    "smtp_sink_factory",
]

DovecotFactory = Callable[..., DovecotServer]
SmtpSinkFactory = Callable[..., SmtpSink]


def _stop_all(servers: list[Any]) -> None:
    """Stop every server even if one stop() fails; re-raise the first error."""
    errors: list[BaseException] = []
    for server in reversed(servers):
        try:
            server.stop()
        except BaseException as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A Dovecot shared by the session (users alice/bob); prefer `dovecot_user` for state."""
    server = DovecotServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dovecot_user(dovecot: DovecotServer) -> tuple[str, str]:
    """A new user with empty mailboxes on the session `dovecot`: (name, password)."""
    return dovecot.new_user()


@pytest.fixture
def dovecot_factory() -> Iterator[DovecotFactory]:
    """Start extra Dovecot servers (tls=, condstore=, oauth2_introspection_url=, users=)."""
    servers: list[DovecotServer] = []

    def make(**options: Any) -> DovecotServer:
        server = DovecotServer(**options)
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        _stop_all(servers)


@pytest.fixture
def smtp_sink_factory() -> Iterator[SmtpSinkFactory]:
    """Start SMTP sinks (username=, password=, auth_required=, tls=, require_starttls=)."""
    sinks: list[SmtpSink] = []

    def make(**options: Any) -> SmtpSink:
        sink = SmtpSink(**options)
        sinks.append(sink)
        sink.start()
        return sink

    try:
        yield make
    finally:
        _stop_all(sinks)


@pytest.fixture
def smtp_sink(smtp_sink_factory: SmtpSinkFactory) -> SmtpSink:
    """A plain SMTP sink (no AUTH, no TLS) on 127.0.0.1."""
    return smtp_sink_factory()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """An authoritative DNS server on 127.0.0.1 answering from records the test sets."""
    server = DnsServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def silent_dns() -> Iterator[SilentDns]:
    """A DNS server on 127.0.0.1 that never answers (every question times out)."""
    server = SilentDns()
    server.start()
    try:
        yield server
    finally:
        server.stop()
