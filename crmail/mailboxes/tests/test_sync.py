"""The sync engine against a real Dovecot: every scenario ends with the store equal to
what doveadm reports, and no message stored twice."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from crmail.mail.models import Message, ParseState
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.models import Folder, Location, Mailbox, SyncState
from crmail.mailboxes.sync import sync_mailbox
from crmail.mailboxes.verify import verify_mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db
CORPUS = sorted((Path(__file__).parents[3] / "tests" / "data" / "cpython_email").glob("msg_*.txt"))


def mail(n: int, subject: str = "", body: str = "") -> bytes:
    return (
        f"From: Client {n} <client{n}@example.com>\r\nTo: rep@crmail.test\r\n"
        f"Subject: {subject or f'Message {n}'}\r\nMessage-ID: <m{n}@example.com>\r\n"
        f"Date: Mon, 02 Nov 2026 10:{n % 60:02d}:00 +0000\r\n\r\n{body or f'Body {n}'}\r\n"
    ).encode()


@pytest.fixture(params=["qresync", "plain"])
def server(request, dovecot, dovecot_factory):
    """The session Dovecot (QRESYNC) and one without CONDSTORE/QRESYNC."""
    return dovecot if request.param == "qresync" else dovecot_factory(condstore=False)


@pytest.fixture
def account(server):
    name, password = server.new_user()
    mailbox = f.mailbox(server, name, password)
    return server, name, mailbox


def sync(mailbox: Mailbox):
    driver = open_driver(mailbox)
    try:
        return sync_mailbox(mailbox, driver)
    finally:
        driver.close()


def assert_matches_server(server, user: str, mailbox: Mailbox) -> None:
    """The stored locations equal doveadm's view of every synced folder, uid by uid."""
    for folder in mailbox.folders.filter(sync_enabled=True, selectable=True):
        on_server = {m["uid"]: m for m in server.messages(user, folder.remote_id)}
        stored = {
            loc.uid: loc for loc in Location.objects.filter(folder=folder).select_related("message")
        }
        assert set(stored) == set(on_server), folder.remote_id
        for uid, loc in stored.items():
            assert loc.message.message_id == on_server[uid]["message_id"].strip("<>")
            assert loc.seen == ("\\Seen" in on_server[uid]["flags"])
            assert loc.flagged == ("\\Flagged" in on_server[uid]["flags"])
    driver = open_driver(mailbox)
    try:
        assert verify_mailbox(mailbox, driver).agrees
    finally:
        driver.close()


def test_first_sync_stores_everything_and_marks_nothing_read(account):
    server, user, mailbox = account
    server.create_mailbox(user, "Projects")
    for n in range(5):
        server.deliver(user, mail(n))
    server.deliver(user, mail(10), "Projects")
    report = sync(mailbox)
    mailbox.refresh_from_db()
    assert report.fetched == 6 and mailbox.state == SyncState.COMPLETED
    assert mailbox.progress_done == 6 and mailbox.progress_bytes > 0
    assert all("\\Seen" not in m["flags"] for m in server.messages(user, "INBOX"))
    assert Message.objects.filter(parse_state=ParseState.PARSED).count() == 6
    assert_matches_server(server, user, mailbox)
    inbox = Folder.objects.get(mailbox=mailbox, remote_id="INBOX")
    assert inbox.role == "inbox"


def test_incremental_sync_follows_new_mail_flags_and_expunges(account):
    server, user, mailbox = account
    uids = [server.deliver(user, mail(n)) for n in range(4)]
    sync(mailbox)
    server.deliver(user, mail(4))
    server.flag(user, "INBOX", uids[0], ["\\Seen", "\\Flagged"])
    server.expunge(user, "INBOX", uids[1])
    report = sync(mailbox)
    assert report.fetched == 1 and report.removed == 1 and report.flags_changed >= 1
    assert_matches_server(server, user, mailbox)
    nothing = sync(mailbox)
    assert (nothing.fetched, nothing.removed, nothing.flags_changed) == (0, 0, 0)


def test_uidvalidity_change_rematches_without_duplicates(account):
    server, user, mailbox = account
    for n in range(3):
        server.deliver(user, mail(n))
    sync(mailbox)
    before = set(Message.objects.values_list("pk", flat=True))
    server.set_uidvalidity(user, "INBOX", 4242)
    report = sync(mailbox)
    assert set(Message.objects.values_list("pk", flat=True)) == before
    assert report.fetched == 0 and report.reused == 3
    assert_matches_server(server, user, mailbox)


def test_a_move_on_the_server_keeps_one_message_with_a_new_location(account):
    server, user, mailbox = account
    server.create_mailbox(user, "Archive")
    uid = server.deliver(user, mail(1))
    sync(mailbox)
    message = Message.objects.get()
    server.move(user, "INBOX", uid, "Archive")
    sync(mailbox)
    assert Message.objects.count() == 1
    [loc] = Location.objects.filter(mailbox=mailbox)
    assert (loc.folder.remote_id, loc.message_id) == ("Archive", message.pk)
    assert_matches_server(server, user, mailbox)


def test_the_same_message_in_two_folders_is_one_message(account):
    server, user, mailbox = account
    server.create_mailbox(user, "Kunden")
    server.deliver(user, mail(1))
    server.deliver(user, mail(1), "Kunden")
    sync(mailbox)
    assert Message.objects.count() == 1
    assert Location.objects.filter(mailbox=mailbox).count() == 2


def test_non_ascii_folder_names(account):
    server, user, mailbox = account
    server.create_mailbox(user, "Angebote/Überfällig")
    server.deliver(user, mail(7), "Angebote/Überfällig")
    sync(mailbox)
    folder = Folder.objects.get(mailbox=mailbox, remote_id="Angebote/Überfällig")
    assert folder.locations.count() == 1
    assert_matches_server(server, user, mailbox)


def test_a_sync_interrupted_after_a_batch_converges_when_run_again(account, monkeypatch):
    server, user, mailbox = account
    for n in range(30):
        server.deliver(user, mail(n))
    monkeypatch.setattr("crmail.mailboxes.sync.BATCH_MESSAGES", 7)

    def crash(_mailbox):
        raise KeyboardInterrupt  # stands for the process dying between two batches

    driver = open_driver(mailbox)
    with pytest.raises(KeyboardInterrupt):
        sync_mailbox(mailbox, driver, progress=crash)
    driver.close()
    assert Location.objects.filter(mailbox=mailbox).count() == 7
    report = sync(mailbox)
    assert report.fetched == 23
    assert Message.objects.count() == 30
    assert_matches_server(server, user, mailbox)


def test_malformed_messages_are_all_kept(dovecot, dovecot_user):
    user, password = dovecot_user
    for path in CORPUS:
        data = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        dovecot.deliver(user, data)
    mailbox = f.mailbox(dovecot, user, password)
    sync(mailbox)
    assert Location.objects.filter(mailbox=mailbox).count() == len(CORPUS)
    assert not Message.objects.filter(parse_state=ParseState.PENDING).exists()
    assert_matches_server(dovecot, user, mailbox)


def test_pop3_downloads_once_and_deletes_only_when_asked(dovecot, dovecot_user):
    user, password = dovecot_user
    for n in range(3):
        dovecot.deliver(user, mail(n))
    mailbox = f.mailbox(dovecot, user, password, protocol="pop3", keep_on_server=True)
    assert sync(mailbox).fetched == 3
    assert sync(mailbox).fetched == 0
    assert len(dovecot.messages(user, "INBOX")) == 3
    # The same content over IMAP and POP3 is the same message.
    imap_raw = {m.sha256 for m in Message.objects.all()}
    assert len(imap_raw) == 3
    mailbox.keep_on_server = False
    mailbox.save()
    dovecot.deliver(user, mail(3))
    assert sync(mailbox).fetched == 1
    assert dovecot.messages(user, "INBOX") == []
    # Deleted on the server, the copies in crmail live on.
    assert Location.objects.filter(mailbox=mailbox).count() == 4


def test_the_import_filter_skips_older_mail_and_unchosen_folders(dovecot, dovecot_user):
    user, password = dovecot_user
    dovecot.create_mailbox(user, "Old")
    dovecot.deliver(user, mail(1))
    dovecot.deliver(user, mail(2))
    dovecot.deliver(user, mail(3), "Old")
    # Make the first message arrive in 2020 (its internal date, what SINCE compares).
    path = next(
        p
        for p in (dovecot.user_home(user) / "Maildir").rglob("*")
        if p.is_file() and b"<m1@example.com>" in p.read_bytes()
    )
    stamp = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()
    os.utime(path, (stamp, stamp))
    dovecot.doveadm("force-resync", "-u", user, "INBOX")
    mailbox = f.mailbox(
        dovecot, user, password, import_since=dt.date(2024, 1, 1), import_folders=["INBOX"]
    )
    sync(mailbox)
    stored = set(
        Location.objects.filter(mailbox=mailbox).values_list("message__message_id", flat=True)
    )
    assert stored == {"m2@example.com"}
    assert not Folder.objects.get(mailbox=mailbox, remote_id="Old").sync_enabled


def test_the_pop3_import_filter_reads_arrival_dates_and_asks_once(
    dovecot, dovecot_user, monkeypatch
):
    user, password = dovecot_user
    old = b"Received: from mx by pop.test; Wed, 01 Jan 2020 09:00:00 +0000\r\n" + mail(1)
    undated = b"Subject: no date at all\r\nMessage-ID: <undated@example.com>\r\n\r\nx\r\n"
    for raw in (old, mail(2), undated):  # mail(2) is dated November 2026
        dovecot.deliver(user, raw)
    mailbox = f.mailbox(dovecot, user, password, protocol="pop3", import_since=dt.date(2024, 1, 1))
    sync(mailbox)
    stored = set(
        Location.objects.filter(mailbox=mailbox).values_list("message__message_id", flat=True)
    )
    assert stored == {"m2@example.com", "undated@example.com"}  # no date: kept, never lost
    # The skipped message is not asked about again on the next sync.
    asked = []
    from crmail.mailboxes.drivers.pop3 import Pop3Driver

    real = Pop3Driver.ids_since
    monkeypatch.setattr(
        Pop3Driver, "ids_since", lambda self, *a: asked.append(a[2]) or real(self, *a)
    )
    dovecot.deliver(user, mail(4))
    assert sync(mailbox).fetched == 1
    assert len(asked) == 1 and len(asked[0]) == 1


def test_an_expunge_in_the_middle_of_a_batch_converges(account, monkeypatch):
    server, user, mailbox = account
    uids = [server.deliver(user, mail(n)) for n in range(12)]
    monkeypatch.setattr("crmail.mailboxes.sync.BATCH_MESSAGES", 4)
    driver = open_driver(mailbox)
    real_fetch = driver.fetch

    def fetch_while_another_client_expunges(folder, ids):
        for n, message in enumerate(real_fetch(folder, ids)):
            if n == 2:
                server.expunge(user, "INBOX", uids[9])
                server.expunge(user, "INBOX", uids[3])  # already fetched, gone now
            yield message

    monkeypatch.setattr(driver, "fetch", fetch_while_another_client_expunges)
    try:
        sync_mailbox(mailbox, driver)
    finally:
        driver.close()
    sync(mailbox)
    assert_matches_server(server, user, mailbox)
    assert Location.objects.filter(mailbox=mailbox).count() == 10


def test_synced_mail_lands_on_the_contacts_it_involves(account, django_capture_on_commit_callbacks):
    from crmail.linking.queries import messages_for_record

    server, user, mailbox = account
    jane = f.contact(mailbox.owner, "Client1@Example.com")
    server.deliver(user, mail(1))  # from client1@example.com
    server.deliver(user, mail(2))  # from someone else: stays off the records
    with django_capture_on_commit_callbacks(execute=True):
        sync(mailbox)
    assert [m.message_id for m in messages_for_record("contacts", jane.pk)] == ["m1@example.com"]
