"""The POP3 driver's logins against a real Dovecot: TLS, STARTTLS, passwords, XOAUTH2."""

from __future__ import annotations

import pytest

from crmail.mailboxes.drivers.base import AuthFailed, ConnectFailed
from crmail.mailboxes.drivers.imap_errors import WRONG_PASSWORD
from crmail.mailboxes.drivers.pop3 import INBOX, Pop3Config, Pop3Driver
from crmail.mailboxes.drivers.tests.test_imap import introspection  # noqa: F401 (fixture)

pytestmark = pytest.mark.database_independent  # no database, or a data dir of its own

HOST = "127.0.0.1"


def test_tls_and_starttls_verified_with_the_fixture_ca(dovecot_factory):
    server = dovecot_factory(tls=True)
    server.deliver("alice", b"Subject: one\r\n\r\nbody\r\n")
    ca = str(server.cert_path)
    for security, port in (("tls", server.pop3s_port), ("starttls", server.pop3_port)):
        cfg = Pop3Config(HOST, port, security, "alice", server.users["alice"], cafile=ca)
        with Pop3Driver(cfg) as driver:
            assert "STLS" not in driver.capabilities  # asked again over TLS
            (message,) = driver.fetch(INBOX, driver.changes(INBOX, None).new_ids)
            assert message.raw == b"Subject: one\r\n\r\nbody\r\n"
        with pytest.raises(ConnectFailed) as err:
            Pop3Driver(Pop3Config(HOST, port, security, "alice", "x", timeout=10)).connect()
        assert err.value.kind == "tls"


def test_starttls_not_offered_is_a_tls_error(dovecot, dovecot_user):
    cfg = Pop3Config(HOST, dovecot.pop3_port, "starttls", *dovecot_user, timeout=10)
    with pytest.raises(ConnectFailed) as err:
        Pop3Driver(cfg).connect()
    assert err.value.kind == "tls" and "STARTTLS" in str(err.value)


def test_a_server_name_dns_cannot_spell_is_said_in_words():
    cfg = Pop3Config("pop\x9d.example", 995, "tls", "alice", "x", timeout=5)
    with pytest.raises(ConnectFailed) as err:
        Pop3Driver(cfg).connect()
    assert err.value.kind == "unreachable" and "could not be found" in str(err.value)


def test_a_wrong_password_is_said_in_words_and_never_shown(dovecot, dovecot_user):
    user, _ = dovecot_user
    cfg = Pop3Config(HOST, dovecot.pop3_port, "none", user, "not-the-password", timeout=10)
    with pytest.raises(AuthFailed) as err:
        Pop3Driver(cfg).connect()
    assert str(err.value) == WRONG_PASSWORD and "not-the-password" not in str(err.value)


def test_xoauth2_good_and_revoked_token(dovecot_factory, introspection):  # noqa: F811
    server = dovecot_factory(oauth2_introspection_url=introspection)
    good = Pop3Config(HOST, server.pop3_port, "none", "alice", oauth2_token="good", timeout=10)
    with Pop3Driver(good) as driver:
        assert driver.changes(INBOX, None).new_ids == []
    bad = Pop3Config(HOST, server.pop3_port, "none", "alice", oauth2_token="bad-token", timeout=10)
    with pytest.raises(AuthFailed) as err:
        Pop3Driver(bad).connect()
    assert err.value.kind == "oauth_revoked" and "bad-token" not in str(err.value)
