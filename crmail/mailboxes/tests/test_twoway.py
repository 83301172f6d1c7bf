"""Changes made in crmail reach the server, changes on the server reach crmail (Dovecot)."""

from __future__ import annotations

import pytest

from crmail.mailboxes import twoway
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.models import Folder, Location
from crmail.mailboxes.sync import sync_mailbox
from crmail.mailboxes.tests.test_sync import assert_matches_server, mail
from crmail.mailboxes.twoway import NotYours, change_flags, delete_message, move_message
from tests import factories as f

pytestmark = pytest.mark.django_db


def sync(mailbox):
    driver = open_driver(mailbox)
    try:
        return sync_mailbox(mailbox, driver)
    finally:
        driver.close()


@pytest.fixture
def synced(dovecot):
    user, password = dovecot.new_user()
    dovecot.create_mailbox(user, "Archive")
    dovecot.create_mailbox(user, "Trash")
    uids = [dovecot.deliver(user, mail(n)) for n in range(3)]
    mailbox = f.mailbox(dovecot, user, password)
    sync(mailbox)
    return dovecot, user, mailbox, uids


def loc(mailbox, uid: int) -> Location:
    return Location.objects.select_related("folder", "mailbox").get(
        mailbox=mailbox, folder__remote_id="INBOX", uid=uid
    )


def test_flags_changed_on_both_sides_converge(synced):
    dovecot, user, mailbox, uids = synced
    change_flags(mailbox.owner, loc(mailbox, uids[0]), add={"seen", "flagged"})
    dovecot.flag(user, "INBOX", uids[1], ["\\Seen"])
    change_flags(mailbox.owner, loc(mailbox, uids[1]), add={"flagged"})
    server = {m["uid"]: m["flags"] for m in dovecot.messages(user, "INBOX")}
    assert {"\\Seen", "\\Flagged"} <= set(server[uids[0]])
    assert {"\\Seen", "\\Flagged"} <= set(server[uids[1]])
    report = sync(mailbox)
    assert report.fetched == 0
    assert loc(mailbox, uids[1]).seen and loc(mailbox, uids[1]).flagged
    assert_matches_server(dovecot, user, mailbox)
    change_flags(mailbox.owner, loc(mailbox, uids[0]), remove={"seen"})
    assert "\\Seen" not in dovecot.messages(user, "INBOX")[0]["flags"]


def test_moving_in_crmail_moves_on_the_server(synced):
    dovecot, user, mailbox, uids = synced
    archive = Folder.objects.get(mailbox=mailbox, remote_id="Archive")
    moved = move_message(mailbox.owner, loc(mailbox, uids[2]), archive)
    assert moved is not None and moved.folder == archive
    assert [m["uid"] for m in dovecot.messages(user, "Archive")] == [moved.uid]
    assert len(dovecot.messages(user, "INBOX")) == 2
    assert sync(mailbox).fetched == 0
    assert_matches_server(dovecot, user, mailbox)


def test_deleting_in_crmail_moves_to_trash_then_deletes_from_trash(synced):
    dovecot, user, mailbox, uids = synced
    trashed = delete_message(mailbox.owner, loc(mailbox, uids[0]))
    assert trashed is not None and trashed.folder.remote_id == "Trash"
    assert len(dovecot.messages(user, "Trash")) == 1
    assert delete_message(mailbox.owner, trashed) is None
    assert dovecot.messages(user, "Trash") == []
    assert sync(mailbox).fetched == 0
    assert_matches_server(dovecot, user, mailbox)


def test_nobody_else_can_touch_a_users_mail(synced):
    _, _, mailbox, uids = synced
    with pytest.raises(NotYours):
        change_flags(f.user(), loc(mailbox, uids[0]), add={"seen"})


def test_a_move_recorded_by_a_sync_first_leaves_one_row(synced, monkeypatch):
    """The watcher may sync the destination between the server's move and crmail's save."""
    dovecot, user, mailbox, uids = synced
    archive = Folder.objects.get(mailbox=mailbox, remote_id="Archive")
    copy = loc(mailbox, uids[1])
    real_open = twoway.open_driver

    def open_then_sync(box):  # type: ignore[no-untyped-def]
        driver = real_open(box)
        real_move = driver.move

        def move_and_sync(*args):  # type: ignore[no-untyped-def]
            new_uid = real_move(*args)
            sync(mailbox)  # another process records the message in Archive first
            return new_uid

        driver.move = move_and_sync
        return driver

    monkeypatch.setattr(twoway, "open_driver", open_then_sync)
    moved = move_message(mailbox.owner, copy, archive)
    assert moved is not None and moved.folder == archive
    assert Location.objects.filter(message=copy.message).count() == 1
    assert_matches_server(dovecot, user, mailbox)


def test_the_copy_acted_on_is_the_inbox_one_and_never_a_colleagues(synced):
    _, _, mailbox, uids = synced
    first = loc(mailbox, uids[0])
    archive = Folder.objects.get(mailbox=mailbox, remote_id="Archive")
    Location.objects.create(
        mailbox=mailbox, folder=archive, message=first.message, remote_id="99", uid=99
    )
    assert twoway.own_copy(mailbox.owner, first.message) == first
    assert twoway.own_copy(f.user(), first.message) is None


def test_a_move_whose_old_place_a_sync_dropped_meanwhile_is_recorded(synced, monkeypatch):
    dovecot, user, mailbox, uids = synced
    archive = Folder.objects.get(mailbox=mailbox, remote_id="Archive")
    copy = loc(mailbox, uids[2])
    real_open = twoway.open_driver

    def open_then_drop(box):  # type: ignore[no-untyped-def]
        driver = real_open(box)
        real_move = driver.move

        def move_and_drop(*args):  # type: ignore[no-untyped-def]
            new_uid = real_move(*args)
            Location.objects.filter(pk=copy.pk).delete()  # a sync of the Inbox alone
            return new_uid

        driver.move = move_and_drop
        return driver

    monkeypatch.setattr(twoway, "open_driver", open_then_drop)
    moved = move_message(mailbox.owner, copy, archive)
    assert moved is not None and moved.folder == archive
    assert Location.objects.filter(message=copy.message).count() == 1
    assert_matches_server(dovecot, user, mailbox)


def _sessions(dovecot, user: str) -> int:
    """The IMAP connections Dovecot has open for ``user`` (``doveadm who``)."""
    lines = dovecot.doveadm("who", "-1").splitlines()
    return sum(1 for line in lines if line.split() and line.split()[0] == user)


def test_changes_in_a_batch_share_one_connection_and_close_it_after(synced):
    dovecot, user, mailbox, uids = synced
    archive = Folder.objects.get(mailbox=mailbox, remote_id="Archive")
    with twoway.batch():
        twoway.set_seen(mailbox.owner, loc(mailbox, uids[0]), True)
        twoway.set_flagged(mailbox.owner, loc(mailbox, uids[1]), True)
        twoway.move(mailbox.owner, loc(mailbox, uids[2]), archive.pk)
        assert _sessions(dovecot, user) == 1
    flags = {m["uid"]: set(m["flags"]) for m in dovecot.messages(user, "INBOX")}
    assert "\\Seen" in flags[uids[0]] and "\\Flagged" in flags[uids[1]]
    assert len(dovecot.messages(user, "Archive")) == 1
    assert _sessions(dovecot, user) == 0
    assert sync(mailbox).fetched == 0
    assert_matches_server(dovecot, user, mailbox)


def test_a_refusal_in_a_batch_leaves_crmail_as_it_was_and_the_next_change_still_lands(synced):
    dovecot, user, mailbox, uids = synced
    archive = Folder.objects.get(mailbox=mailbox, remote_id="Archive")
    dovecot.doveadm("mailbox", "delete", "-u", user, "Archive")  # gone behind crmail's back
    with twoway.batch():
        with pytest.raises(twoway.Refused):
            twoway.move(mailbox.owner, loc(mailbox, uids[0]), archive.pk)
        twoway.set_seen(mailbox.owner, loc(mailbox, uids[1]), True)
    flags = {m["uid"]: set(m["flags"]) for m in dovecot.messages(user, "INBOX")}
    assert len(flags) == 3 and "\\Seen" in flags[uids[1]]
    assert loc(mailbox, uids[0]).folder.remote_id == "INBOX"  # crmail unchanged
