"""Prove the mail-server fixtures against the real servers."""

from __future__ import annotations

import contextlib
import imaplib
import json
import poplib
import re
import smtplib
import socket
import ssl
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.harness.dovecot import DovecotError, DovecotServer, live_group_members
from tests.harness.plugin import DovecotFactory, SmtpSinkFactory
from tests.harness.serving import serve_in_thread
from tests.harness.smtp import SmtpSink

pytestmark = pytest.mark.database_independent  # no database, or a data dir of its own

HOST = "127.0.0.1"


def make_message(
    subject: str, message_id: str, body: bytes = b"Hallo \xc3\xa4\xc3\xb6\xc3\xbc"
) -> bytes:
    """A CRLF message with 8-bit body and a dot-stuffing candidate line."""
    return (
        b"From: Sender <sender@example.org>\r\n"
        b"To: alice@example.org\r\n"
        b"Subject: " + subject.encode() + b"\r\n"
        b"Message-ID: <" + message_id.encode() + b">\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n" + body + b"\r\n.leading dot line\r\n..two dots\r\nlast line\r\n"
    )


@contextlib.contextmanager
def imap_login(server: DovecotServer, user: str, password: str) -> Iterator[imaplib.IMAP4]:
    imap = imaplib.IMAP4(HOST, server.imap_port, timeout=10)
    try:
        imap.login(user, password)
        yield imap
    finally:
        with contextlib.suppress(Exception):
            imap.logout()


def capabilities(imap: imaplib.IMAP4) -> set[str]:
    typ, data = imap.capability()
    assert typ == "OK"
    return set(data[0].decode().upper().split())


def uid_fetch(imap: imaplib.IMAP4, uid: int, item: str) -> list:
    typ, data = imap.uid("FETCH", str(uid), f"({item})")
    assert typ == "OK", data
    return [d for d in data if d is not None]


def imap_status(imap: imaplib.IMAP4, mailbox: str) -> dict[str, int]:
    typ, data = imap.status(mailbox, "(MESSAGES UIDNEXT UIDVALIDITY)")
    assert typ == "OK", data
    inner = re.search(rb"\(([^)]*)\)\s*$", data[0]).group(1).split()
    return {inner[i].decode(): int(inner[i + 1]) for i in range(0, len(inner), 2)}


def imap_uids(imap: imaplib.IMAP4) -> list[int]:
    typ, data = imap.uid("SEARCH", "ALL")
    assert typ == "OK"
    return [int(x) for x in data[0].split()]


def imap_flags(imap: imaplib.IMAP4, uid: int) -> set[str]:
    data = uid_fetch(imap, uid, "FLAGS")
    raw = data[0] if isinstance(data[0], bytes) else data[0][0]
    flags = set(re.search(rb"FLAGS \(([^)]*)\)", raw).group(1).decode().split())
    return flags - {"\\Recent"}  # session-specific


# -- Dovecot: IMAP --------------------------------------------------------------


def test_capability_after_login_has_condstore_and_qresync(dovecot, dovecot_user):
    with imap_login(dovecot, *dovecot_user) as imap:
        caps = capabilities(imap)
    assert {"CONDSTORE", "QRESYNC", "IDLE", "MOVE", "UIDPLUS"} <= caps


def test_capability_without_condstore(dovecot_factory: DovecotFactory):
    server = dovecot_factory(condstore=False)
    with imap_login(server, "alice", server.users["alice"]) as imap:
        caps = capabilities(imap)
    assert "CONDSTORE" not in caps
    assert "QRESYNC" not in caps
    assert {"IMAP4REV1", "MOVE", "UIDPLUS", "IDLE"} <= caps


def test_wrong_password_is_rejected(dovecot, dovecot_user):
    user, _password = dovecot_user
    imap = imaplib.IMAP4(HOST, dovecot.imap_port, timeout=10)
    try:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.login(user, "not-the-password")
    finally:
        imap.shutdown()


def test_add_user_while_running_and_change_password(dovecot):
    name, first = dovecot.new_user("carol")  # add_user on the running server
    with imap_login(dovecot, name, first) as imap:
        assert imap.select("INBOX")[0] == "OK"
    dovecot.add_user(name, "second-pw")
    with imap_login(dovecot, name, "second-pw"):
        pass
    imap = imaplib.IMAP4(HOST, dovecot.imap_port, timeout=10)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            imap.login(name, first)
    finally:
        imap.shutdown()


def test_deliver_then_imap_fetch_is_byte_identical(dovecot, dovecot_user):
    user, password = dovecot_user
    raw = make_message("Byte identical", "bytes-1@example.org")
    before = dovecot.status(user, "INBOX")
    uid = dovecot.deliver(user, raw)
    after = dovecot.status(user, "INBOX")
    assert uid == before["uidnext"]
    assert after["messages"] == before["messages"] + 1
    assert after["uidnext"] == uid + 1
    assert after["highestmodseq"] > before["highestmodseq"]

    with imap_login(dovecot, user, password) as imap:
        assert imap.select("INBOX", readonly=True)[0] == "OK"
        data = uid_fetch(imap, uid, "BODY.PEEK[]")
    assert data[0][1] == raw
    [message] = dovecot.messages(user, "INBOX")
    assert message["guid"]
    assert message == {
        "uid": uid,
        "flags": [],
        "guid": message["guid"],
        "message_id": "<bytes-1@example.org>",
    }


def test_deliver_returns_increasing_uids(dovecot, dovecot_user):
    user, _ = dovecot_user
    uids = [dovecot.deliver(user, make_message(f"n{i}", f"n{i}@example.org")) for i in range(3)]
    assert uids == sorted(uids) and len(set(uids)) == 3
    assert [m["uid"] for m in dovecot.messages(user, "INBOX")] == uids


def test_pop3_uidl_lists_delivered_message(dovecot, dovecot_user):
    user, password = dovecot_user
    raw = make_message("POP3", "pop-1@example.org")
    uid = dovecot.deliver(user, raw)
    uidvalidity = dovecot.status(user, "INBOX")["uidvalidity"]
    pop = poplib.POP3(HOST, dovecot.pop3_port, timeout=10)
    try:
        pop.user(user)
        pop.pass_(password)
        _resp, listing, _octets = pop.uidl()
        _resp, lines, _octets = pop.retr(1)
    finally:
        pop.quit()
    # pop3_uidl_format = %08Xu%08Xv
    assert [line.lower() for line in listing] == [f"1 {uid:08x}{uidvalidity:08x}".encode()]
    assert b"\r\n".join(lines) + b"\r\n" == raw


def test_set_uidvalidity_changes_imap_status(dovecot, dovecot_user):
    user, password = dovecot_user
    dovecot.create_mailbox(user, "Projekte")
    dovecot.deliver(user, make_message("uv", "uv@example.org"), mailbox="Projekte")
    with imap_login(dovecot, user, password) as imap:
        old = imap_status(imap, "Projekte")["UIDVALIDITY"]
    new = old + 1000
    dovecot.set_uidvalidity(user, "Projekte", new)
    assert dovecot.status(user, "Projekte")["uidvalidity"] == new
    with imap_login(dovecot, user, password) as imap:
        status = imap_status(imap, "Projekte")
    assert status["UIDVALIDITY"] == new
    assert status["MESSAGES"] == 1


def test_non_ascii_mailbox_is_modified_utf7_in_imap_list(dovecot, dovecot_user):
    user, password = dovecot_user
    dovecot.create_mailbox(user, "Angebote/Überfällig")
    assert {"INBOX", "Angebote", "Angebote/Überfällig"} <= set(dovecot.list_mailboxes(user))
    uid = dovecot.deliver(user, make_message("ü", "umlaut@example.org"), "Angebote/Überfällig")
    with imap_login(dovecot, user, password) as imap:
        typ, lines = imap.list()
        assert typ == "OK"
        listed = b"\n".join(lines)
        assert b'"/" "Angebote/&ANw-berf&AOQ-llig"' in listed or (
            b'"/" Angebote/&ANw-berf&AOQ-llig' in listed
        ), listed
        assert imap.select('"Angebote/&ANw-berf&AOQ-llig"', readonly=True)[0] == "OK"
        assert imap_uids(imap) == [uid]


def test_flag_expunge_move_visible_over_imap(dovecot, dovecot_user):
    user, password = dovecot_user
    dovecot.create_mailbox(user, "Archiv")
    uid1 = dovecot.deliver(user, make_message("one", "one@example.org"))
    uid2 = dovecot.deliver(user, make_message("two", "two@example.org"))

    dovecot.flag(user, "INBOX", uid1, ["\\Flagged", "$Kunde"])
    with imap_login(dovecot, user, password) as imap:
        imap.select("INBOX", readonly=True)
        assert {"\\Flagged", "$Kunde"} <= imap_flags(imap, uid1)
        assert "\\Flagged" not in imap_flags(imap, uid2)
    assert set(dovecot.messages(user)[0]["flags"]) == {"\\Flagged", "$Kunde"}

    dovecot.flag(user, "INBOX", uid1, "\\Flagged", add=False)
    dovecot.expunge(user, "INBOX", uid2)
    with imap_login(dovecot, user, password) as imap:
        imap.select("INBOX", readonly=True)
        assert imap_flags(imap, uid1) == {"$Kunde"}
        assert imap_uids(imap) == [uid1]

    new_uid = dovecot.move(user, "INBOX", uid1, "Archiv")
    with imap_login(dovecot, user, password) as imap:
        imap.select("INBOX", readonly=True)
        assert imap_uids(imap) == []
        imap.select("Archiv", readonly=True)
        assert imap_uids(imap) == [new_uid]
        assert uid_fetch(imap, new_uid, "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]")[0][1].strip() == (
            b"Message-ID: <one@example.org>"
        )


def test_several_servers_run_side_by_side(dovecot, dovecot_factory: DovecotFactory):
    other = dovecot_factory(users={"zoe": "zoe-pw"})
    assert other.instance_name != dovecot.instance_name
    assert other.imap_port != dovecot.imap_port
    other.deliver("zoe", make_message("z", "z@example.org"))
    assert other.status("zoe")["messages"] == 1
    with imap_login(other, "zoe", "zoe-pw") as imap:
        assert imap_status(imap, "INBOX")["MESSAGES"] == 1


def test_stop_leaves_no_process_and_no_files():
    server = DovecotServer(users={"alice": "pw"})
    with server:
        pgid = server.pid
        directory = server.dir
        assert pgid is not None and directory is not None and directory.exists()
        socket.create_connection((HOST, server.imap_port), timeout=5).close()
    assert live_group_members(pgid) == []  # zombies may wait for init to reap them
    assert not directory.exists()
    assert server.dir is None and not server.running


def test_failed_start_reports_log_and_cleans_up():
    class Broken(DovecotServer):
        def _render_config(self) -> str:
            return super()._render_config() + "\nthis_setting_does_not_exist = 1\n"

    server = Broken(users={"alice": "pw"})
    with pytest.raises(DovecotError, match="this_setting_does_not_exist"):
        server.start()
    assert server.dir is None and not server.running


# -- Dovecot: TLS ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(tls=True) as server:
        yield server


def test_tls_ports_and_cert(tls_dovecot: DovecotServer):
    assert tls_dovecot.cert_path is not None and tls_dovecot.cert_path.exists()
    ports = {
        tls_dovecot.imap_port,
        tls_dovecot.imaps_port,
        tls_dovecot.pop3_port,
        tls_dovecot.pop3s_port,
    }
    assert None not in ports and len(ports) == 4


def test_imaps_verifies_with_generated_cert(tls_dovecot: DovecotServer):
    ctx = ssl.create_default_context(cafile=str(tls_dovecot.cert_path))
    imap = imaplib.IMAP4_SSL(HOST, tls_dovecot.imaps_port, ssl_context=ctx, timeout=10)
    try:
        imap.login("alice", tls_dovecot.users["alice"])
        assert imap.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert "CONDSTORE" in capabilities(imap)
    finally:
        imap.logout()


def test_imaps_without_ca_fails_verification(tls_dovecot: DovecotServer):
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(
            HOST, tls_dovecot.imaps_port, ssl_context=ssl.create_default_context(), timeout=10
        )


def test_imaps_wrong_hostname_fails_even_with_ca(tls_dovecot: DovecotServer):
    ctx = ssl.create_default_context(cafile=str(tls_dovecot.cert_path))
    with (
        socket.create_connection((HOST, tls_dovecot.imaps_port), timeout=10) as sock,
        pytest.raises(ssl.SSLCertVerificationError, match=r"[Hh]ostname"),
    ):
        ctx.wrap_socket(sock, server_hostname="mail.example.org")


def test_imap_and_pop3_starttls(tls_dovecot: DovecotServer):
    ctx = ssl.create_default_context(cafile=str(tls_dovecot.cert_path))
    imap = imaplib.IMAP4(HOST, tls_dovecot.imap_port, timeout=10)
    try:
        assert "STARTTLS" in imap.capabilities
        imap.starttls(ssl_context=ctx)
        imap.login("alice", tls_dovecot.users["alice"])
        assert isinstance(imap.sock, ssl.SSLSocket)
    finally:
        imap.logout()

    pop = poplib.POP3(HOST, tls_dovecot.pop3_port, timeout=10)
    try:
        pop.stls(context=ctx)
        pop.user("alice")
        pop.pass_(tls_dovecot.users["alice"])
        assert isinstance(pop.sock, ssl.SSLSocket)
    finally:
        pop.quit()


def test_pop3s_verifies_with_generated_cert(tls_dovecot: DovecotServer):
    ctx = ssl.create_default_context(cafile=str(tls_dovecot.cert_path))
    pop = poplib.POP3_SSL(HOST, tls_dovecot.pop3s_port, context=ctx, timeout=10)
    try:
        pop.user("alice")
        assert pop.pass_(tls_dovecot.users["alice"]).startswith(b"+OK")
    finally:
        pop.quit()


# -- Dovecot: XOAUTH2 / OAUTHBEARER ------------------------------------------------


@pytest.fixture
def introspection() -> Iterator[tuple[str, list[str]]]:
    """Local OAuth2 introspection endpoint: token "good" is alice's; returns (url, tokens seen)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            token = form.get("token", [""])[0]
            seen.append(token)
            answer = {"active": True, "username": "alice"} if token == "good" else {"active": False}
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer((HOST, 0), Handler)
    thread = serve_in_thread(httpd)
    try:
        yield f"http://{HOST}:{httpd.server_address[1]}/introspect", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _sasl(initial: bytes):
    """imaplib authobject: send `initial`, answer any error challenge with an empty line."""
    calls = []

    def respond(challenge: bytes) -> bytes:
        calls.append(challenge)
        return initial if len(calls) == 1 else b""

    return respond


def test_xoauth2_good_token_logs_in_bad_token_fails(
    dovecot_factory: DovecotFactory, introspection: tuple[str, list[str]]
):
    url, seen = introspection
    server = dovecot_factory(oauth2_introspection_url=url)

    imap = imaplib.IMAP4(HOST, server.imap_port, timeout=10)
    try:
        assert "AUTH=XOAUTH2" in imap.capabilities
        typ, _ = imap.authenticate("XOAUTH2", _sasl(b"user=alice\x01auth=Bearer good\x01\x01"))
        assert typ == "OK"
        assert imap.select("INBOX")[0] == "OK"
    finally:
        imap.logout()

    imap = imaplib.IMAP4(HOST, server.imap_port, timeout=10)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            imap.authenticate("XOAUTH2", _sasl(b"user=alice\x01auth=Bearer bad\x01\x01"))
    finally:
        imap.shutdown()
    assert seen == ["good", "bad"]

    imap = imaplib.IMAP4(HOST, server.imap_port, timeout=10)
    try:
        typ, _ = imap.authenticate("OAUTHBEARER", _sasl(b"n,a=alice,\x01auth=Bearer good\x01\x01"))
        assert typ == "OK"
    finally:
        imap.logout()
    # password logins keep working next to OAuth2
    with imap_login(server, "alice", server.users["alice"]):
        pass


# -- SMTP sink -------------------------------------------------------------------


def test_smtp_sink_receives_bytes_without_auth(smtp_sink: SmtpSink):
    raw = make_message("SMTP", "smtp-1@example.org")
    with smtplib.SMTP(HOST, smtp_sink.port, timeout=10) as smtp:
        refused = smtp.sendmail("sender@example.org", ["a@example.org", "b@example.org"], raw)
    assert refused == {}
    [message] = smtp_sink.wait_for(1, timeout=10)
    assert message.mail_from == "sender@example.org"
    assert message.rcpt_tos == ["a@example.org", "b@example.org"]
    assert message.data == raw
    assert message.auth_user is None and not message.tls


def test_smtp_sink_with_auth(smtp_sink_factory: SmtpSinkFactory):
    sink = smtp_sink_factory(username="mailer", password="s3cret", auth_required=True)
    raw = make_message("Auth", "smtp-auth@example.org")
    with smtplib.SMTP(HOST, sink.port, timeout=10) as smtp:
        smtp.ehlo()
        assert {"PLAIN", "LOGIN"} <= set(smtp.esmtp_features["auth"].upper().split())
        with pytest.raises(smtplib.SMTPSenderRefused):
            smtp.sendmail("sender@example.org", ["a@example.org"], raw)
    with (
        smtplib.SMTP(HOST, sink.port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        smtp.login("mailer", "wrong")
    for mechanism in ("PLAIN", "LOGIN"):
        with smtplib.SMTP(HOST, sink.port, timeout=10) as smtp:
            smtp.ehlo()
            smtp.user, smtp.password = "mailer", "s3cret"
            code, _ = smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))
            assert code == 235
            smtp.sendmail("sender@example.org", ["a@example.org"], raw)
    messages = sink.wait_for(2, timeout=10)
    assert [m.data for m in messages] == [raw, raw]
    assert [m.auth_user for m in messages] == ["mailer", "mailer"]
    *failed, plain, login = sink.auth_attempts
    assert failed and not any(ok for _mech, _login, ok in failed)
    assert plain == ("PLAIN", "mailer", True) and login == ("LOGIN", "mailer", True)


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_smtp_sink_tls(smtp_sink_factory: SmtpSinkFactory, mode: str):
    sink = smtp_sink_factory(tls=mode, username="mailer", password="pw")
    ctx = ssl.create_default_context(cafile=str(sink.cert_path))
    raw = make_message("TLS", f"smtp-{mode}@example.org")
    if mode == "implicit":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(HOST, sink.port, context=ctx, timeout=10)
    else:
        smtp = smtplib.SMTP(HOST, sink.port, timeout=10)
        smtp.starttls(context=ctx)
    with smtp:
        smtp.login("mailer", "pw")
        smtp.sendmail("sender@example.org", ["a@example.org"], raw)
    [message] = sink.wait_for(1, timeout=10)
    assert message.tls and message.data == raw and message.auth_user == "mailer"


def test_smtp_sink_can_refuse_data(smtp_sink: SmtpSink):
    smtp_sink.data_response = "451 4.3.0 try again later"
    with (
        smtplib.SMTP(HOST, smtp_sink.port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPDataError) as err,
    ):
        smtp.sendmail("s@example.org", ["a@example.org"], b"Subject: x\r\n\r\nx\r\n")
    assert err.value.smtp_code == 451
    assert smtp_sink.messages == []
    with pytest.raises(TimeoutError):
        smtp_sink.wait_for(1, timeout=0.2)


def test_cert_helper_paths(tmp_path: Path):
    from tests.harness.certs import generate_self_signed

    pair = generate_self_signed(tmp_path, name="x")
    assert pair.cert_path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert pair.key_path.stat().st_mode & 0o077 == 0
    ssl.create_default_context(cafile=str(pair.cert_path))  # loads as a CA
