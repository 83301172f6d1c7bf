"""The IMAP driver against a real Dovecot (tests/harness): login, TLS, folders, sync, IDLE."""

from __future__ import annotations

import json
import select
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crmail.mailboxes.drivers import imap as imap_module
from crmail.mailboxes.drivers.base import AuthFailed, ConnectFailed, Driver, RemoteFolder
from crmail.mailboxes.drivers.imap import ImapConfig, ImapDriver
from crmail.mailboxes.drivers.imap_errors import WRONG_PASSWORD
from crmail.mailboxes.drivers.tests.mailgen import fill_maildir
from tests.harness.dovecot import DovecotServer, free_port
from tests.harness.serving import serve_in_thread

pytestmark = pytest.mark.database_independent  # no database, or a data dir of its own

HOST = "127.0.0.1"


def make_message(n: int, body: bytes = b"Hallo \xc3\xa4\xc3\xb6\xc3\xbc") -> bytes:
    """A CRLF message (IMAP serves CRLF, so bytes compare equal)."""
    return (
        b"From: Sender <sender@example.org>\r\n"
        b"To: alice@example.org\r\n"
        b"Subject: Test %d\r\n"
        b"Message-ID: <test-%d@example.org>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n" % (n, n) + body + b"\r\n.leading dot\r\n"
    )


def config(server: DovecotServer, user: str, password: str, **kw) -> ImapConfig:
    options = {"port": server.imap_port, "security": "none", "timeout": 10.0, **kw}
    return ImapConfig(HOST, login=user, password=password, **options)


@pytest.fixture
def account(dovecot: DovecotServer, dovecot_user: tuple[str, str]) -> tuple[DovecotServer, str]:
    return dovecot, dovecot_user[0]


@pytest.fixture
def driver(dovecot: DovecotServer, dovecot_user: tuple[str, str]) -> Iterator[ImapDriver]:
    with ImapDriver(config(dovecot, *dovecot_user)) as d:
        yield d


def flags_on_server(server: DovecotServer, user: str, box: str = "INBOX") -> dict[int, set[str]]:
    return {m["uid"]: set(m["flags"]) for m in server.messages(user, box)}  # type: ignore[misc]


# -- login and errors ------------------------------------------------------------------------


def test_login_learns_capabilities_after_login_and_enables_qresync(driver: ImapDriver):
    assert {"QRESYNC", "CONDSTORE", "MOVE", "UIDPLUS", "IDLE", "SPECIAL-USE"} <= driver.capabilities
    assert driver._qresync and driver._condstore
    as_driver: Driver = driver  # type-checks against the sync engine's protocol
    assert callable(as_driver.changes)


def test_wrong_password_is_auth_failed_in_words_without_the_password(dovecot, dovecot_user):
    user, _ = dovecot_user
    secret = "wrong-Secret-123"
    cfg = config(dovecot, user, secret)
    with pytest.raises(AuthFailed) as err:
        ImapDriver(cfg).connect()
    assert str(err.value) == WRONG_PASSWORD and err.value.kind == "auth"
    assert secret not in str(err.value) and secret not in repr(err.value)
    assert secret not in repr(cfg)
    assert err.value.__cause__ is None


def test_refused_port_and_unknown_host(dovecot, dovecot_user):
    with pytest.raises(ConnectFailed) as err:
        ImapDriver(config(dovecot, *dovecot_user, port=free_port())).connect()
    assert err.value.kind == "refused" and "refused" in str(err.value)
    cfg = ImapConfig("no-such-host.invalid", 993, login="x", password="y", timeout=5)
    with pytest.raises(ConnectFailed) as err:
        ImapDriver(cfg).connect()
    assert err.value.kind == "unreachable"
    # A name DNS cannot spell (a control character; a label of 64 letters): the same.
    for host in ("mail\x9d.example", "a" * 64 + ".example"):
        cfg = ImapConfig(host, 993, login="x", password="y", timeout=5)
        with pytest.raises(ConnectFailed) as err:
            ImapDriver(cfg).connect()
        assert err.value.kind == "unreachable" and "could not be found" in str(err.value)


def test_silent_server_times_out(dovecot, dovecot_user):
    import socket

    with socket.socket() as listener:  # accepts (backlog) but never greets
        listener.bind((HOST, 0))
        listener.listen(1)
        cfg = config(dovecot, *dovecot_user, port=listener.getsockname()[1], timeout=0.5)
        with pytest.raises(ConnectFailed) as err:
            ImapDriver(cfg).connect()
    assert err.value.kind == "timeout"


@pytest.fixture
def tls_dovecot(dovecot_factory) -> DovecotServer:
    return dovecot_factory(tls=True)


def test_tls_verified_with_the_fixture_ca(tls_dovecot: DovecotServer):
    pw = tls_dovecot.users["alice"]
    ca = str(tls_dovecot.cert_path)
    for security, port in (("tls", tls_dovecot.imaps_port), ("starttls", tls_dovecot.imap_port)):
        cfg = ImapConfig(HOST, port, security, "alice", pw, cafile=ca, timeout=10)
        with ImapDriver(cfg) as d:
            assert "QRESYNC" in d.capabilities
            assert d._wire is not None and d._wire.sock.version() in ("TLSv1.2", "TLSv1.3")
            assert "STARTTLS" not in d.capabilities


def test_tls_without_the_ca_fails_in_words_and_self_signed_can_be_allowed(
    tls_dovecot: DovecotServer,
):
    pw = tls_dovecot.users["alice"]
    for security, port in (("tls", tls_dovecot.imaps_port), ("starttls", tls_dovecot.imap_port)):
        with pytest.raises(ConnectFailed) as err:
            ImapDriver(ImapConfig(HOST, port, security, "alice", pw, timeout=10)).connect()
        assert err.value.kind == "tls"
        assert "self-signed" in str(err.value) and "allow self-signed certificate" in str(err.value)
        cfg = ImapConfig(HOST, port, security, "alice", pw, allow_self_signed=True, timeout=10)
        with ImapDriver(cfg) as d:
            assert d.list_folders()


def test_implicit_tls_against_a_plain_port_is_a_tls_error(dovecot, dovecot_user):
    with pytest.raises(ConnectFailed) as err:
        ImapDriver(config(dovecot, *dovecot_user, security="tls")).connect()
    assert err.value.kind in ("tls", "disconnected")


def test_starttls_required_but_not_offered(dovecot, dovecot_user):
    with pytest.raises(ConnectFailed) as err:
        ImapDriver(config(dovecot, *dovecot_user, security="starttls")).connect()
    assert err.value.kind == "tls" and "STARTTLS" in str(err.value)


@pytest.fixture
def introspection() -> Iterator[str]:
    """OAuth2 introspection endpoint: token "good" is alice's, anything else is inactive."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            token = urllib.parse.parse_qs(self.rfile.read(length).decode()).get("token", [""])[0]
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
    serve_in_thread(httpd)
    try:
        yield f"http://{HOST}:{httpd.server_address[1]}/introspect"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_xoauth2_login_good_and_revoked_token(dovecot_factory, introspection: str):
    server = dovecot_factory(oauth2_introspection_url=introspection)
    good = ImapConfig(HOST, server.imap_port, "none", "alice", oauth2_token="good", timeout=10)
    with ImapDriver(good) as d:
        assert [f.remote_id for f in d.list_folders()] == ["INBOX"]
    bad = ImapConfig(HOST, server.imap_port, "none", "alice", oauth2_token="bad-token", timeout=10)
    with pytest.raises(AuthFailed) as err:
        ImapDriver(bad).connect()
    assert err.value.kind == "oauth_revoked" and "bad-token" not in str(err.value)


# -- folders --------------------------------------------------------------------------------


def test_list_folders_with_special_use_roles_and_non_ascii_names(account):
    server, user = account
    for name in ("Sent", "Trash", "Drafts", "Junk", "Archive", "Angebote/Überfällig", "受信/北京"):
        server.create_mailbox(user, name)
    with ImapDriver(config(server, user, server.users[user])) as d:
        folders = {f.remote_id: f for f in d.list_folders()}
        assert folders["INBOX"].role == "inbox" and folders["INBOX"].name == "Inbox"
        assert {n: folders[n].role for n in ("Sent", "Trash", "Drafts", "Junk")} == {
            "Sent": "sent",
            "Trash": "trash",
            "Drafts": "drafts",
            "Junk": "junk",
        }
        assert folders["Archive"].role == "archive"  # no \Archive here: by its name
        assert (
            folders["Angebote/Überfällig"].selectable
            and folders["Angebote/Überfällig"].role is None
        )
        assert folders["Angebote/Überfällig"].delimiter == "/"
        assert not folders["Angebote"].selectable  # a parent that is only a name
        uid = server.deliver(user, make_message(1), "Angebote/Überfällig")
        delta = d.changes(folders["Angebote/Überfällig"], None)
        assert delta.new_ids == [str(uid)]
        delta = d.changes(folders["受信/北京"], None)
        assert delta.new_ids == [] and delta.present_ids == []


# -- sync -----------------------------------------------------------------------------------


def test_first_sync_returns_byte_identical_messages_and_never_marks_read(account, driver):
    server, user = account
    raws = [make_message(i) for i in range(5)]
    uids = [server.deliver(user, raw) for raw in raws]
    server.flag(user, "INBOX", uids[1], ["\\Flagged", "$Forwarded"])
    delta = driver.changes(RemoteFolder("INBOX", "Inbox", "inbox"), None)
    assert delta.reset and delta.new_ids == [str(u) for u in uids]
    assert delta.present_ids == delta.new_ids
    assert delta.flag_changes[str(uids[1])] == {"flagged", "$Forwarded"}
    status = server.status(user)
    assert delta.cursor == {
        "uidvalidity": status["uidvalidity"],
        "uidnext": status["uidnext"],
        "highestmodseq": status["highestmodseq"],
    }
    got = list(driver.fetch("INBOX", delta.new_ids))
    assert [m.remote_id for m in got] == delta.new_ids
    assert [m.raw for m in got] == raws
    assert [m.size for m in got] == [len(r) for r in raws]
    assert got[1].flags == {"flagged", "$Forwarded"} and got[0].flags == frozenset()
    assert all(m.internal_date and m.internal_date.tzinfo for m in got)
    assert all("\\Seen" not in f for f in flags_on_server(server, user).values())
    headers = driver.fetch_headers("INBOX", delta.new_ids)
    assert headers[str(uids[3])] == ("test-3@example.org", len(raws[3]))


def test_incremental_with_qresync_reports_exactly_the_changes(account, driver):
    server, user = account
    uids = [server.deliver(user, make_message(i)) for i in range(4)]
    cursor = driver.changes("INBOX", None).cursor
    assert driver.changes("INBOX", cursor).new_ids == []  # nothing happened
    new = server.deliver(user, make_message(10))
    server.flag(user, "INBOX", uids[0], "\\Seen")
    server.flag(user, "INBOX", uids[2], ["$Kunde"])
    server.expunge(user, "INBOX", uids[1])
    delta = driver.changes("INBOX", cursor)
    assert not delta.reset and delta.present_ids is None  # QRESYNC: no full listing
    assert delta.new_ids == [str(new)]
    assert delta.removed_ids == [str(uids[1])]
    assert delta.flag_changes == {str(uids[0]): {"seen"}, str(uids[2]): {"$Kunde"}}
    assert delta.cursor["uidnext"] == new + 1
    again = driver.changes("INBOX", delta.cursor)
    assert (again.new_ids, again.removed_ids, again.flag_changes) == ([], [], {})


class CondstoreOnly(ImapDriver):
    """The driver as it behaves against a server with CONDSTORE but no QRESYNC."""

    def _enable(self) -> None:
        self._caps = self._caps - {"QRESYNC"}
        super()._enable()


def test_incremental_with_condstore_only_lists_present_ids(account):
    server, user = account
    with CondstoreOnly(config(server, user, server.users[user])) as d:
        assert d._condstore and not d._qresync
        uids = [server.deliver(user, make_message(i)) for i in range(4)]
        cursor = d.changes("INBOX", None).cursor
        new = server.deliver(user, make_message(10))
        server.flag(user, "INBOX", uids[3], "\\Answered")
        server.expunge(user, "INBOX", uids[0])
        delta = d.changes("INBOX", cursor)
        assert delta.new_ids == [str(new)]
        assert delta.flag_changes == {str(uids[3]): {"answered"}}
        assert delta.present_ids == [str(u) for u in (*uids[1:], new)]


def test_incremental_without_condstore_compares_uids_and_flags(dovecot_factory):
    server = dovecot_factory(condstore=False)
    user, pw = server.new_user()
    uids = [server.deliver(user, make_message(i)) for i in range(3)]
    with ImapDriver(config(server, user, pw)) as d:
        assert not d._condstore and not d._qresync
        first = d.changes("INBOX", None)
        assert first.cursor["highestmodseq"] is None
        assert first.new_ids == [str(u) for u in uids]
        new = server.deliver(user, make_message(9))
        server.flag(user, "INBOX", uids[2], "\\Flagged")
        server.expunge(user, "INBOX", uids[0])
        delta = d.changes("INBOX", first.cursor)
        assert not delta.reset
        assert delta.new_ids == [str(new)]
        assert delta.present_ids == [str(uids[1]), str(uids[2]), str(new)]
        assert delta.flag_changes == {str(uids[1]): frozenset(), str(uids[2]): {"flagged"}}
        assert [m.raw for m in d.fetch("INBOX", delta.new_ids)] == [make_message(9)]


def test_uidvalidity_change_resets_the_folder(account, driver):
    server, user = account
    server.create_mailbox(user, "Projekte")
    uids = [server.deliver(user, make_message(i), "Projekte") for i in range(2)]
    cursor = driver.changes("Projekte", None).cursor
    server.set_uidvalidity(user, "Projekte", cursor["uidvalidity"] + 1000)
    delta = driver.changes("Projekte", cursor)
    assert delta.reset and delta.cursor["uidvalidity"] == cursor["uidvalidity"] + 1000
    assert delta.present_ids == delta.new_ids == [str(u) for u in uids]
    assert driver.fetch_headers("Projekte", delta.new_ids) == {
        str(uids[0]): ("test-0@example.org", len(make_message(0))),
        str(uids[1]): ("test-1@example.org", len(make_message(1))),
    }


def test_message_expunged_between_listing_and_fetch_is_just_missing(account, driver):
    server, user = account
    uids = [server.deliver(user, make_message(i)) for i in range(3)]
    delta = driver.changes("INBOX", None)
    server.expunge(user, "INBOX", uids[1])
    got = [m.remote_id for m in driver.fetch("INBOX", delta.new_ids)]
    assert got == [str(uids[0]), str(uids[2])]
    assert list(driver.fetch("INBOX", ["999999"])) == []


def test_fetch_in_many_pipelined_batches(account, driver, monkeypatch):
    server, user = account
    raws = fill_maildir(server, user, 300, seed=7)
    monkeypatch.setattr(imap_module, "FETCH_BATCH", 40)
    monkeypatch.setattr(imap_module, "FETCH_BATCH_BYTES", 1 << 20)
    delta = driver.changes("INBOX", None)
    assert len(delta.new_ids) == 300
    got = list(driver.fetch("INBOX", delta.new_ids))
    assert [int(m.remote_id) for m in got] == [int(i) for i in delta.new_ids]
    assert [m.raw for m in got] == raws
    assert all(m.flags == frozenset() for m in got)


def test_abandoned_fetch_leaves_the_session_usable(account, driver, monkeypatch):
    server, user = account
    fill_maildir(server, user, 60, seed=3)
    monkeypatch.setattr(imap_module, "FETCH_BATCH", 10)
    delta = driver.changes("INBOX", None)
    stream = driver.fetch("INBOX", delta.new_ids)
    first = next(stream)
    assert first.remote_id == delta.new_ids[0]
    # another command while batches are still in flight
    assert [f.remote_id for f in driver.list_folders()] == ["INBOX"]
    assert list(stream) == []  # the abandoned stream ends quietly
    assert len(list(driver.fetch("INBOX", delta.new_ids[:25]))) == 25


def test_reconnects_after_the_server_drops_the_session(account, driver):
    server, user = account
    server.deliver(user, make_message(1))
    driver.changes("INBOX", None)
    server.doveadm("kick", user)
    with pytest.raises(ConnectFailed) as err:
        for _ in range(50):  # the kick arrives asynchronously
            driver.changes("INBOX", None)
            time.sleep(0.05)
    assert err.value.kind == "disconnected"
    assert not driver.connected
    assert len(driver.changes("INBOX", None).new_ids) == 1  # lazy reconnect


# -- two-way --------------------------------------------------------------------------------


def test_set_flags_move_delete_append_show_on_the_server(account, driver):
    server, user = account
    for name in ("Archiv", "Trash"):
        server.create_mailbox(user, name)
    uids = [server.deliver(user, make_message(i)) for i in range(3)]

    driver.set_flags("INBOX", str(uids[0]), add={"seen", "flagged", "$Forwarded"})
    driver.set_flags("INBOX", str(uids[0]), remove={"flagged"})
    assert flags_on_server(server, user)[uids[0]] == {"\\Seen", "$Forwarded"}

    new = driver.move("INBOX", str(uids[1]), "Archiv")
    assert new is not None
    assert [m["uid"] for m in server.messages(user, "Archiv")] == [int(new)]
    assert uids[1] not in flags_on_server(server, user)

    driver.list_folders()
    in_trash = driver.delete("INBOX", str(uids[2]))
    assert in_trash is not None
    assert [m["message_id"] for m in server.messages(user, "Trash")] == ["<test-2@example.org>"]
    assert driver.delete("Trash", in_trash) is None  # in Trash: gone for good
    assert server.messages(user, "Trash") == []

    when = datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)
    appended = driver.append("Archiv", make_message(42), {"seen", "$Sent"}, when)
    [row] = [m for m in server.messages(user, "Archiv") if m["uid"] == int(appended or 0)]
    assert set(row["flags"]) == {"\\Seen", "$Sent"}
    [msg] = list(driver.fetch("Archiv", [appended or ""]))
    assert msg.raw == make_message(42) and msg.internal_date == when


def test_move_without_the_move_extension_copies_and_expunges(account):
    server, user = account
    server.create_mailbox(user, "Archiv")
    uids = [server.deliver(user, make_message(i)) for i in range(2)]

    class NoMove(ImapDriver):
        def _enable(self) -> None:
            self._caps = self._caps - {"MOVE"}
            super()._enable()

    with NoMove(config(server, user, server.users[user])) as d:
        new = d.move("INBOX", str(uids[0]), "Archiv")
    assert new is not None and [m["uid"] for m in server.messages(user, "Archiv")] == [int(new)]
    assert list(flags_on_server(server, user)) == [uids[1]]


def test_synchronizing_literals_without_literal_plus(account):
    server, user = account
    password = "pässwört-ü"  # 8-bit: LOGIN must send it as a literal
    server.add_user(user, password)

    class NoLiteralPlus(ImapDriver):
        def _enable(self) -> None:
            self._caps = self._caps - {"LITERAL+", "LITERAL-"}
            super()._enable()

    cfg = config(server, user, password)
    with NoLiteralPlus(cfg) as d:
        assert "LITERAL+" not in d.capabilities
        uid = d.append("INBOX", make_message(5))
        assert [m.raw for m in d.fetch("INBOX", [uid or ""])] == [make_message(5)]


# -- IDLE -----------------------------------------------------------------------------------


def test_idle_returns_true_soon_after_new_mail_and_false_on_timeout(account, driver):
    server, user = account
    assert driver.idle("INBOX", 0.5) is False
    timer = threading.Timer(0.5, server.deliver, (user, make_message(1)))
    start = time.monotonic()
    timer.start()
    try:
        assert driver.idle("INBOX", 15) is True
    finally:
        timer.join()
    assert time.monotonic() - start < 5
    assert len(driver.changes("INBOX", None).new_ids) == 1  # the session is usable after IDLE


def test_nonblocking_idle_api_for_a_multiplexer(account, dovecot):
    server, user = account
    pw = server.users[user]
    drivers = [ImapDriver(config(server, user, pw)) for _ in range(2)]
    try:
        server.create_mailbox(user, "Other")
        cursor = drivers[0].changes("INBOX", None).cursor
        drivers[0].idle_start("INBOX", cursor)
        drivers[1].idle_start("Other")
        assert not any(d.idle_check() for d in drivers)
        server.flag(user, "INBOX", server.deliver(user, make_message(1)), "\\Seen")
        deadline = time.monotonic() + 10
        woke: set[int] = set()
        while not woke and time.monotonic() < deadline:
            ready, _, _ = select.select([d.fileno() for d in drivers], [], [], 1)
            woke = {i for i, d in enumerate(drivers) if d.fileno() in ready and d.idle_check()}
        assert woke == {0}
        assert drivers[0].idle_done() is True
        assert drivers[1].idle_done() is False
        # mail that arrived before idle_start counts at once when a cursor is given
        drivers[0].idle_start("INBOX", cursor)
        assert drivers[0].idle_check() is True
        drivers[0].idle_done()
    finally:
        for d in drivers:
            d.close()


# -- performance (prints, never asserts timings) -------------------------------------------


@pytest.mark.soak
def test_bench_first_sync_of_2000_mixed_messages():
    from crmail.mailboxes.drivers.tests.bench_imap import run_benchmark

    run_benchmark(2000, rtt_ms=20, rounds=2)
