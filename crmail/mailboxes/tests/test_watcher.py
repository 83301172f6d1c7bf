"""The IDLE watcher against a real Dovecot: news is stored at once, each mailbox is
watched by one watcher, connections come back after failures.

Each test polls the database with a generous deadline instead of asserting timings.
Watchers run with short ticks and leases so that takeovers happen within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.db import OperationalError, close_old_connections

from crmail.jobs.models import Lease
from crmail.mailboxes import watcher_db
from crmail.mailboxes.drivers.imap_idle import FolderState
from crmail.mailboxes.models import Location, Mailbox, SyncState
from crmail.mailboxes.tasks import run_sync
from crmail.mailboxes.tests import test_oauth
from crmail.mailboxes.watcher import Watcher
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)
auth_server = test_oauth.auth_server  # the OAuth tests' provider and Dovecot, as fixtures
oauth_dovecot = test_oauth.oauth_dovecot
DEADLINE = 30.0
_n = iter(range(1, 1_000_000))


def mail(subject: str = "") -> tuple[str, bytes]:
    """A new message: (its Message-ID without <>, its bytes)."""
    n = next(_n)
    mid = f"watch{n}.{time.monotonic_ns()}@example.com"
    raw = (
        f"From: Client <client{n}@example.com>\r\nTo: rep@crmail.test\r\n"
        f"Subject: {subject or f'Watched {n}'}\r\nMessage-ID: <{mid}>\r\n"
        f"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\nBody {n}\r\n"
    ).encode()
    return mid, raw


def eventually(check: Callable[[], object], what: str, timeout: float = DEADLINE) -> object:
    """Poll ``check`` until it returns something true; SQLite's shared in-memory test
    database may refuse a read while a watcher thread writes ('table is locked')."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except OperationalError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.05)


def stored(mailbox: Mailbox, message_id: str) -> bool:
    return Location.objects.filter(mailbox=mailbox, message__message_id=message_id).exists()


@pytest.fixture
def watchers() -> Iterator[Callable[..., Watcher]]:
    """Start watchers with short ticks, leases and waits after a failure; all are stopped
    at the end. (A sync after news fails now and then here: SQLite's shared in-memory test
    database refuses a lock while the test reads, 'table is locked', where a file database
    waits out its busy timeout.)"""
    started: list[Watcher] = []

    def make(holder: str | None = None, **options: object) -> Watcher:
        short = {
            "tick": 0.3,
            "lease_ttl": timedelta(seconds=3),
            "backoff": (0.3, 2.0),
            "failed_retry": (0.3, 2.0),
        }
        options = short | options
        w = Watcher(holder=holder, **options)  # type: ignore[arg-type]
        started.append(w)
        w.start()
        return w

    yield make
    for w in started:
        w.stop()
    close_old_connections()


def new_mailbox(server, user: str, password: str, **fields) -> Mailbox:
    """A mailbox on ``server``; ``fields`` may change the port and security too."""
    mailbox = f.mailbox(server, user, password)
    for name, value in fields.items():
        setattr(mailbox, name, value)
    mailbox.save()
    return mailbox


def synced_mailbox(server, user: str, password: str, **fields) -> Mailbox:
    """A mailbox whose first sync is done, so that only news makes the watcher sync."""
    mailbox = new_mailbox(server, user, password, **fields)
    run_sync(mailbox)
    return mailbox


# -- news -------------------------------------------------------------------------------------


def test_a_delivered_message_is_stored_by_the_watcher(dovecot, dovecot_user, watchers):
    user, password = dovecot_user
    mailbox = synced_mailbox(dovecot, user, password)
    watcher = watchers()
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")

    mid, raw = mail()
    dovecot.deliver(user, raw)

    eventually(lambda: stored(mailbox, mid), "the new message is stored")
    eventually(lambda: watcher.stats.syncs >= 1, "the sync is counted")
    assert watcher.stats.news >= 1


def test_a_flag_set_by_another_mail_program_shows_while_watching(dovecot, dovecot_user, watchers):
    user, password = dovecot_user
    mid, raw = mail()
    uid = dovecot.deliver(user, raw)
    mailbox = synced_mailbox(dovecot, user, password)
    copy = Location.objects.get(mailbox=mailbox, message__message_id=mid)
    assert not copy.flagged and not copy.seen
    watcher = watchers()
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")

    dovecot.flag(user, "INBOX", uid, ["\\Flagged", "\\Seen"])

    def changed() -> bool:
        copy.refresh_from_db()
        return copy.flagged and copy.seen

    eventually(changed, "the flags set on the server are in crmail")


def test_mail_that_arrived_while_nobody_watched_is_synced_when_watching_starts(
    dovecot, dovecot_user, watchers
):
    user, password = dovecot_user
    mailbox = synced_mailbox(dovecot, user, password)
    mid, raw = mail()
    dovecot.deliver(user, raw)  # the stored cursor is stale now

    watchers()

    eventually(lambda: stored(mailbox, mid), "the message is stored")


def test_news_during_a_sync_makes_exactly_one_more_sync(
    dovecot, dovecot_user, watchers, monkeypatch
):
    import threading

    from crmail.mailboxes import watcher as watcher_module

    user, password = dovecot_user
    mailbox = synced_mailbox(dovecot, user, password)
    real_sync = watcher_module._sync
    calls: list[int] = []
    release = threading.Event()

    def slow_sync(mailbox_id: int) -> str:
        calls.append(mailbox_id)
        release.wait(DEADLINE)  # the first sync waits while more news arrives
        return real_sync(mailbox_id)

    monkeypatch.setattr(watcher_module, "_sync", slow_sync)
    watcher = watchers()
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")

    ids = []
    mid, raw = mail()
    dovecot.deliver(user, raw)
    ids.append(mid)
    eventually(lambda: calls, "a sync started")
    for _ in range(3):
        mid, raw = mail()
        dovecot.deliver(user, raw)
        ids.append(mid)
    eventually(lambda: watcher.stats.news >= 4, "the news of every delivery")
    release.set()

    eventually(lambda: all(stored(mailbox, m) for m in ids), "every message is stored")
    eventually(lambda: len(calls) >= 2, "the sync after the news that came meanwhile")
    time.sleep(1.0)  # room for a wrong third sync
    assert len(calls) == 2


def test_a_sync_that_failed_is_tried_again_and_the_news_is_stored(
    dovecot, dovecot_user, watchers, monkeypatch
):
    from crmail.mailboxes import watcher as watcher_module

    user, password = dovecot_user
    mailbox = synced_mailbox(dovecot, user, password)
    real_sync = watcher_module._sync
    calls: list[str] = []

    def failing_twice(mailbox_id: int) -> str:
        if len(calls) < 2:
            calls.append("failed")
            return "failed"
        calls.append("ran")
        return real_sync(mailbox_id)

    monkeypatch.setattr(watcher_module, "_sync", failing_twice)
    watcher = watchers()
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")

    mid, raw = mail()
    dovecot.deliver(user, raw)

    eventually(lambda: stored(mailbox, mid), "the message is stored after two failed syncs")
    assert calls[:3] == ["failed", "failed", "ran"]
    assert watcher.stats.sync_failures == 2
    eventually(lambda: watcher.stats.syncs >= 1, "the sync that worked is counted")


# -- who watches what ---------------------------------------------------------------------------


def test_two_watchers_share_the_mailboxes_and_one_takes_over_when_the_other_dies(dovecot, watchers):
    boxes = [synced_mailbox(dovecot, *dovecot.new_user()) for _ in range(4)]
    everyone = {m.pk for m in boxes}
    a = watchers("test-host:watcher-a")
    b = watchers("test-host:watcher-b")

    def split() -> bool:
        return a.held() | b.held() == everyone and a.held() and b.held()

    eventually(split, "both watchers hold some mailboxes")
    eventually(lambda: a.watching() | b.watching() == everyone, "every mailbox watched")
    for _ in range(20):  # never one mailbox with both
        assert not a.held() & b.held()
        assert not a.watching() & b.watching()
        time.sleep(0.05)
    leases = Lease.objects.filter(name__startswith="mailbox-watch:")
    owners = dict(leases.values_list("name", "holder"))
    assert owners == {
        watcher_db.watch_lease(pk): (a.holder if pk in a.held() else b.holder) for pk in everyone
    }

    orphaned = a.held()
    a.stop(release=False)  # like a killed process: its leases stay until they expire
    eventually(lambda: b.watching() == everyone, "the survivor watches every mailbox")

    box = next(m for m in boxes if m.pk in orphaned)
    mid, raw = mail()
    dovecot.deliver(box.login, raw)
    eventually(lambda: stored(box, mid), "mail of a mailbox taken over is stored")


def test_leases_of_a_dead_process_on_this_machine_are_taken_at_once(
    dovecot, dovecot_user, watchers
):
    from django.utils import timezone

    from crmail.jobs.leases import process_identity

    user, password = dovecot_user
    mailbox = synced_mailbox(dovecot, user, password)
    dead = subprocess.Popen(["true"])
    dead.wait()
    dead_holder = f"{process_identity().rpartition(':')[0]}:{dead.pid}"
    for name in (watcher_db.watch_lease(mailbox.pk), watcher_db.presence_lease(dead_holder)):
        Lease.objects.create(
            name=name, holder=dead_holder, expires_at=timezone.now() + timedelta(hours=1)
        )

    watcher = watchers()

    eventually(lambda: mailbox.pk in watcher.watching(), "the dead holder's mailbox is watched")


def test_a_deactivated_mailbox_stops_being_watched(dovecot, dovecot_user, watchers):
    user, password = dovecot_user
    mailbox = synced_mailbox(dovecot, user, password)
    watcher = watchers()
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")

    Mailbox.objects.filter(pk=mailbox.pk).update(is_active=False)

    eventually(lambda: mailbox.pk not in watcher.held(), "the watch has stopped")
    eventually(
        lambda: not Lease.objects.filter(name=watcher_db.watch_lease(mailbox.pk)).exists(),
        "its lease is given up",
    )
    mid, raw = mail()
    dovecot.deliver(user, raw)
    time.sleep(1.0)
    assert not stored(mailbox, mid)


def test_a_stopped_watcher_gives_its_leases_up(dovecot, dovecot_user, watchers):
    user, password = dovecot_user
    mailbox = synced_mailbox(dovecot, user, password)
    watcher = watchers()
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")

    watcher.stop()

    assert not Lease.objects.filter(holder=watcher.holder).exists()


# -- connections ------------------------------------------------------------------------------


def test_a_killed_imap_session_is_reconnected_and_mail_meanwhile_is_synced(
    dovecot_factory, watchers
):
    server = dovecot_factory()
    user, password = server.new_user()
    mailbox = synced_mailbox(server, user, password)
    watcher = watchers(backoff=(1.0, 2.0))
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")
    eventually(lambda: server.imap_pids(), "its imap process runs")

    for pid in server.imap_pids():
        os.kill(pid, signal.SIGKILL)
    mid, raw = mail()
    server.deliver(user, raw)

    eventually(lambda: stored(mailbox, mid), "the message is stored")
    eventually(lambda: watcher.stats.connects >= 2, "the watcher connected again")
    assert watcher.stats.disconnects >= 1


def test_a_restarted_server_is_reconnected(dovecot_factory, watchers):
    server = dovecot_factory()
    user, password = server.new_user()
    mailbox = synced_mailbox(server, user, password)
    watcher = watchers(backoff=(0.5, 2.0))
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")

    server.restart()
    eventually(lambda: watcher.stats.connects >= 2, "the watcher connected again")
    mid, raw = mail()
    server.deliver(user, raw)

    eventually(lambda: stored(mailbox, mid), "the message is stored")


def test_a_server_without_idle_is_polled_with_noop(dovecot_factory, watchers):
    server = dovecot_factory(imap_capability="IMAP4rev1 SASL-IR LITERAL+ UIDPLUS ESEARCH")
    user, password = server.new_user()
    mailbox = synced_mailbox(server, user, password)
    watcher = watchers(poll_every=0.5)
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")

    mid, raw = mail()
    server.deliver(user, raw)

    eventually(lambda: stored(mailbox, mid), "the message is stored")


def test_an_xoauth2_mailbox_is_watched_and_a_refused_token_renewed_once(
    auth_server, oauth_dovecot, watchers
):
    login, _ = oauth_dovecot.new_user()
    mailbox = test_oauth.connected_mailbox(auth_server, login, oauth_dovecot)
    run_sync(mailbox)
    stale = Mailbox.objects.get(pk=mailbox.pk).access_token
    auth_server.expire(stale)  # crmail thinks it good; Dovecot refuses it
    grants = len(auth_server.refresh_grants())

    watcher = watchers()
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")
    assert (stale, False) in auth_server.introspected
    assert len(auth_server.refresh_grants()) == grants + 1

    mid, raw = mail()
    oauth_dovecot.deliver(login, raw)
    eventually(lambda: stored(mailbox, mid), "the message is stored")


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls_are_watched_with_a_self_signed_certificate_allowed(
    dovecot_factory, watchers, security
):
    server = dovecot_factory(tls=True)
    user, password = server.new_user()
    port = server.imaps_port if security == "tls" else server.imap_port
    mailbox = synced_mailbox(
        server, user, password, security=security, port=port, allow_self_signed=True
    )
    watcher = watchers()
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")

    mid, raw = mail()
    server.deliver(user, raw)

    eventually(lambda: stored(mailbox, mid), "the message is stored")


def test_an_untrusted_certificate_is_not_watched(dovecot_factory, watchers):
    server = dovecot_factory(tls=True)
    user, password = server.new_user()
    mailbox = new_mailbox(server, user, password, security="tls", port=server.imaps_port)
    watcher = watchers()

    eventually(lambda: mailbox.pk in watcher.held(), "the watcher took the mailbox")
    time.sleep(1.5)
    assert mailbox.pk not in watcher.watching() and watcher.stats.connects == 0


def test_a_refused_login_is_recorded_and_retried_only_after_the_password_changes(
    dovecot, dovecot_user, watchers
):
    user, password = dovecot_user
    mailbox = f.mailbox(dovecot, user, "wrong password")
    watcher = watchers()

    def refused() -> bool:
        mailbox.refresh_from_db()
        return mailbox.state == SyncState.ERROR

    eventually(refused, "the refusal is recorded on the mailbox")
    assert "refused" in mailbox.last_error and mailbox.last_error_kind == "auth"
    time.sleep(1.0)  # several ticks: no new login attempt
    assert mailbox.pk not in watcher.watching() and watcher.stats.connects == 0

    mailbox.secret = password
    mailbox.save(update_fields=["secret"])

    eventually(lambda: mailbox.pk in watcher.watching(), "watched with the new password")


# -- without a server ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize(
    ("cursor", "newer"),
    [
        (None, True),
        ({}, True),
        ({"uidvalidity": 7, "uidnext": 5, "highestmodseq": 9}, False),
        ({"uidvalidity": 7, "uidnext": 4, "highestmodseq": 9}, True),
        ({"uidvalidity": 8, "uidnext": 5, "highestmodseq": 9}, True),
        ({"uidvalidity": 7, "uidnext": 5, "highestmodseq": 8}, True),
        ({"uidvalidity": 7, "uidnext": 5, "highestmodseq": None}, False),
    ],
)
def test_an_inbox_is_newer_than_a_cursor_when_uidnext_uidvalidity_or_modseq_moved(cursor, newer):
    state = FolderState(exists=4, uidvalidity=7, uidnext=5, highestmodseq=9)
    assert state.newer_than(cursor) is newer
