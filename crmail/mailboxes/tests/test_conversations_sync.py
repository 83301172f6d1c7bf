"""The inbox's conversations follow the server (Dovecot; doveadm is the oracle): changes
made there and synced, and two-way actions made in crmail."""

from __future__ import annotations

import pytest

from crmail.mailboxes import inbox
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.models import Folder, Location
from crmail.mailboxes.sync import sync_mailbox
from crmail.mailboxes.tests.test_conversations import rebuilt, snapshot
from crmail.mailboxes.tests.test_sync import mail
from crmail.mailboxes.twoway import change_flags, delete_message, move_message
from tests import factories as f

pytestmark = pytest.mark.django_db


def reply(n: int, to: int) -> bytes:
    return (
        f"From: Rep <rep@crmail.test>\r\nTo: client{to}@example.com\r\n"
        f"Subject: Re: Message {to}\r\nMessage-ID: <r{n}@example.com>\r\n"
        f"In-Reply-To: <m{to}@example.com>\r\nReferences: <m{to}@example.com>\r\n"
        f"Date: Mon, 02 Nov 2026 11:{n % 60:02d}:00 +0000\r\n\r\nReply {n}\r\n"
    ).encode()


@pytest.fixture
def synced(dovecot, django_capture_on_commit_callbacks):
    user, password = dovecot.new_user()
    dovecot.create_mailbox(user, "Archive")
    dovecot.create_mailbox(user, "Trash")
    dovecot.deliver(user, mail(1))
    dovecot.deliver(user, reply(2, to=1))
    dovecot.deliver(user, mail(3))
    mailbox = f.mailbox(dovecot, user, password)

    def sync() -> None:
        driver = open_driver(mailbox)
        try:
            with django_capture_on_commit_callbacks(execute=True):
                sync_mailbox(mailbox, driver)
        finally:
            driver.close()

    sync()
    return dovecot, user, mailbox, sync


def folder_of(mailbox, remote_id: str) -> Folder:
    return Folder.objects.get(mailbox=mailbox, remote_id=remote_id)


def conversations(mailbox, remote_id: str = "INBOX") -> list[tuple[str, int, bool, bool]]:
    """(newest subject, messages, unread, flagged) of a folder's conversations, newest first."""
    got = inbox.page(mailbox.owner, folder=folder_of(mailbox, remote_id))
    return [(e.message.subject, e.count, e.unread, e.flagged) for e in got.items]


def unread_on_server(dovecot, user: str, remote_id: str = "INBOX") -> int:
    return sum("\\Seen" not in m["flags"] for m in dovecot.messages(user, remote_id))


def by_uid(mailbox, remote_id: str, uid: int) -> Location:
    return Location.objects.select_related("folder", "mailbox").get(
        folder__mailbox=mailbox, folder__remote_id=remote_id, uid=uid
    )


def test_changes_made_on_the_server_show_in_the_conversations(synced):
    dovecot, user, mailbox, sync = synced
    assert conversations(mailbox) == [
        ("Re: Message 1", 2, True, False),
        ("Message 3", 1, True, False),
    ]
    uids = dovecot.uids(user, "INBOX")

    dovecot.flag(user, "INBOX", uids[1], ["\\Seen", "\\Flagged"])
    dovecot.flag(user, "INBOX", uids[0], ["\\Seen"])
    sync()
    assert conversations(mailbox)[0] == ("Re: Message 1", 2, False, True)
    assert {c.folder.remote_id: c.unread for c in inbox.folders(mailbox.owner)}["INBOX"] == (
        unread_on_server(dovecot, user)
    )
    assert snapshot() == rebuilt()

    dovecot.move(user, "INBOX", uids[1], "Archive")
    sync()
    assert conversations(mailbox) == [
        ("Message 3", 1, True, False),
        ("Message 1", 1, False, False),
    ]
    assert conversations(mailbox, "Archive") == [("Re: Message 1", 1, False, True)]
    assert snapshot() == rebuilt()

    dovecot.expunge(user, "INBOX", uids[2])
    sync()
    assert [c[0] for c in conversations(mailbox)] == ["Message 1"]
    assert inbox.stream_counts(mailbox.owner)[-1].total == 1
    assert snapshot() == rebuilt()


def test_synced_mail_is_in_its_threads_conversations_when_the_sync_commits(dovecot):
    """No consumer of the outbox has run (no commit callbacks): the parse results' own
    transaction put the messages in their threads' conversations."""
    user, password = dovecot.new_user()
    dovecot.deliver(user, mail(1))
    dovecot.deliver(user, reply(2, to=1))
    mailbox = f.mailbox(dovecot, user, password)
    driver = open_driver(mailbox)
    try:
        sync_mailbox(mailbox, driver)
    finally:
        driver.close()
    assert conversations(mailbox) == [("Re: Message 1", 2, True, False)]
    assert snapshot() == rebuilt()


def test_a_uidvalidity_change_keeps_the_conversations(synced):
    dovecot, user, mailbox, sync = synced
    before = conversations(mailbox)
    dovecot.set_uidvalidity(user, "INBOX", 4242)
    sync()
    assert conversations(mailbox) == before
    assert snapshot() == rebuilt()


def test_two_way_actions_change_the_conversations(synced):
    dovecot, user, mailbox, _ = synced
    owner = mailbox.owner
    first, answer, other = dovecot.uids(user, "INBOX")

    change_flags(owner, by_uid(mailbox, "INBOX", first), add={"seen"})
    change_flags(owner, by_uid(mailbox, "INBOX", answer), add={"seen", "flagged"})
    assert conversations(mailbox)[0] == ("Re: Message 1", 2, False, True)
    assert unread_on_server(dovecot, user) == 1
    assert inbox.page(owner, unread=True).count == 1
    assert snapshot() == rebuilt()

    moved = move_message(owner, by_uid(mailbox, "INBOX", answer), folder_of(mailbox, "Archive"))
    assert moved is not None
    assert [m["uid"] for m in dovecot.messages(user, "Archive")] == [moved.uid]
    assert conversations(mailbox) == [
        ("Message 3", 1, True, False),
        ("Message 1", 1, False, False),
    ]
    assert conversations(mailbox, "Archive") == [("Re: Message 1", 1, False, True)]
    assert snapshot() == rebuilt()

    trashed = delete_message(owner, by_uid(mailbox, "INBOX", other))
    assert trashed is not None and trashed.folder.remote_id == "Trash"
    assert [c[0] for c in conversations(mailbox)] == ["Message 1"]
    assert [c[0] for c in conversations(mailbox, "Trash")] == ["Message 3"]
    assert delete_message(owner, trashed) is None
    assert dovecot.messages(user, "Trash") == []
    assert conversations(mailbox, "Trash") == []
    assert snapshot() == rebuilt()
