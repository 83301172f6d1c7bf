"""Storage accounting (SPEC F11): the counters kept by every writer equal a recount from
the blob store's index, after syncs, moves and deletions on a real Dovecot; the quota's
arithmetic."""

from __future__ import annotations

import pytest

from crmail.dropbox import receive
from crmail.dropbox.addresses import current as dropbox_address
from crmail.mail.store import store_raw
from crmail.mailboxes import actions, quota, twoway, usage
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.models import WHOLE, Location, Mailbox, SentMessage, StorageUsage
from crmail.mailboxes.sync import sync_mailbox
from crmail.mailboxes.tests.test_sync import mail
from tests import factories as f

pytestmark = pytest.mark.django_db
GB = 10**9


def sync(mailbox: Mailbox):
    driver = open_driver(mailbox)
    try:
        return sync_mailbox(mailbox, driver)
    finally:
        driver.close()


def counters() -> dict[tuple[int, int], tuple[int, int]]:
    """{(user, mailbox or WHOLE): (messages, bytes)} as counted, empty rows left out."""
    return {
        (row.user_id, row.mailbox_id): (row.messages, row.bytes)
        for row in StorageUsage.objects.all()
        if row.messages or row.bytes
    }


def assert_counters_match_a_recount() -> dict[tuple[int, int], tuple[int, int]]:
    """The counters equal what ``recount`` finds; returns them."""
    before = counters()
    done = usage.recount()
    assert done.corrected == [], done.corrected
    assert counters() == before
    return before


def big(n: int, kb: int) -> bytes:
    return mail(n, body="x" * (kb * 1000))


def test_a_user_counts_each_message_once_however_many_folders_hold_it(dovecot):
    user, password = dovecot.new_user()
    dovecot.create_mailbox(user, "Projects")
    one, two = big(1, 3), big(2, 5)
    dovecot.deliver(user, one)
    dovecot.deliver(user, two)
    dovecot.deliver(user, one, "Projects")  # the same message in a second folder
    mailbox = f.mailbox(dovecot, user, password)
    sync(mailbox)
    sizes = sorted(Location.objects.values_list("message__size", flat=True).distinct())
    assert len(sizes) == 2
    got = assert_counters_match_a_recount()
    assert got[(mailbox.owner_id, WHOLE)] == (2, sum(sizes))
    assert got[(mailbox.owner_id, mailbox.pk)] == (2, sum(sizes))


def test_recount_equals_the_counters_after_syncs_moves_and_deletions(dovecot):
    user, password = dovecot.new_user()
    for name in ("Archive", "Trash", "Projects"):
        dovecot.create_mailbox(user, name)
    uids = [dovecot.deliver(user, big(n, n + 1)) for n in range(6)]
    dovecot.deliver(user, big(0, 1), "Projects")  # message 0 twice
    mailbox = f.mailbox(dovecot, user, password)
    owner = mailbox.owner
    sync(mailbox)
    first = assert_counters_match_a_recount()
    assert first[(owner.pk, WHOLE)][0] == 6

    # A colleague holds one of the same messages: it counts for both of them.
    peer_name, peer_password = dovecot.new_user()
    dovecot.deliver(peer_name, big(3, 4))
    peer_box = f.mailbox(dovecot, peer_name, peer_password)
    sync(peer_box)
    shared = assert_counters_match_a_recount()
    assert shared[(peer_box.owner_id, WHOLE)][0] == 1
    assert shared[(owner.pk, WHOLE)] == first[(owner.pk, WHOLE)]

    # Moves on the server, and in crmail (to Archive, then to Trash by deleting).
    dovecot.move(user, "INBOX", uids[1], "Archive")
    sync(mailbox)
    assert assert_counters_match_a_recount()[(owner.pk, WHOLE)] == first[(owner.pk, WHOLE)]
    inbox = Location.objects.filter(mailbox=mailbox, folder__remote_id="INBOX")
    twoway.move_message(owner, inbox.get(uid=uids[2]), mailbox.folders.get(remote_id="Archive"))
    twoway.delete_message(owner, inbox.get(uid=uids[3]))  # into Trash: still held
    sync(mailbox)
    assert assert_counters_match_a_recount()[(owner.pk, WHOLE)] == first[(owner.pk, WHOLE)]

    # Deletions: expunged on the server; one copy of the message held twice; from Trash.
    dovecot.expunge(user, "INBOX", uids[4])
    dovecot.expunge(user, "INBOX", uids[0])  # still in Projects
    sync(mailbox)
    after = assert_counters_match_a_recount()
    assert after[(owner.pk, WHOLE)][0] == 5
    trash = Location.objects.get(mailbox=mailbox, folder__remote_id="Trash")
    twoway.delete_message(owner, trash)
    sync(mailbox)
    assert assert_counters_match_a_recount()[(owner.pk, WHOLE)][0] == 4

    # A folder deleted on the server, and a UIDVALIDITY change.
    dovecot.delete_mailbox(user, "Projects")
    sync(mailbox)
    assert assert_counters_match_a_recount()[(owner.pk, WHOLE)][0] == 3
    dovecot.set_uidvalidity(user, "INBOX", 777)
    sync(mailbox)
    assert assert_counters_match_a_recount()[(owner.pk, WHOLE)][0] == 3

    # Deactivated without keeping the mail: nothing is left to count, the peer keeps theirs.
    actions.deactivate_mailbox(owner, mailbox, keep_mail=False)
    final = assert_counters_match_a_recount()
    assert (owner.pk, WHOLE) not in final and (owner.pk, mailbox.pk) not in final
    assert final[(peer_box.owner_id, WHOLE)] == shared[(peer_box.owner_id, WHOLE)]


def test_mail_sent_from_crmail_and_received_at_the_dropbox_counts_for_its_user(settings):
    settings.CRMAIL_DROPBOX_DOMAIN = "bcc.crmail.test"
    sender = f.user()
    sent = store_raw(big(1, 2))
    SentMessage.objects.create(message=sent, sender=sender, from_address=sender.email)
    address = dropbox_address(sender)
    receive.accept(big(2, 3), "customer@example.com", [address], "127.0.0.1")
    receive.accept(big(2, 3), "customer@example.com", [address], "127.0.0.1")  # a retry
    got = assert_counters_match_a_recount()
    assert got[(sender.pk, WHOLE)] == (2, len(big(1, 2)) + len(big(2, 3)))


def test_mail_only_at_the_provider_counts_nothing(dovecot):
    """A body that waits has nothing in the blob store, so it counts zero (as mail of a
    mailbox that keeps no copy does: it has no locations at all)."""
    user, password = dovecot.new_user()
    dovecot.deliver(user, big(1, 2))
    mailbox = f.mailbox(dovecot, user, password)
    quota.forget()
    from django.test import override_settings

    with override_settings(STORAGE_BYTES_PER_LICENCE=0, STORAGE_CEILING_BYTES=0):
        quota.forget()
        sync(mailbox)
    quota.forget()
    assert Location.objects.filter(mailbox=mailbox).count() == 1
    assert counters().get((mailbox.owner_id, WHOLE)) is None
    assert_counters_match_a_recount()


def test_the_quota_is_the_lower_of_100_gb_and_5_gb_a_licence_plus_the_extra(settings):
    settings.CRMAIL_STORAGE_EXTRA_GB = None
    admin = f.user(admin=True)
    for _ in range(2):
        f.user()
    f.user(is_active=False)  # a deactivated user holds no licence
    q = quota.current()
    assert (q.licences, q.base, q.extra, q.total) == (3, 15 * GB, 0, 15 * GB)
    for _ in range(30):
        f.user()
    assert quota.current().base == 100 * GB  # 33 licences: the ceiling
    quota.set_extra_gb(admin, 20)
    assert quota.current().total == 120 * GB
    assert not quota.current().extra_from_environment


def test_the_extra_from_the_environment_takes_the_pages_place(settings):
    admin = f.user(admin=True)
    settings.CRMAIL_STORAGE_EXTRA_GB = None
    quota.set_extra_gb(admin, 7)
    settings.CRMAIL_STORAGE_EXTRA_GB = 3
    q = quota.current()
    assert (q.extra_gb, q.extra_from_environment, q.total) == (3, True, 8 * GB)
    with pytest.raises(quota.QuotaError, match="CRMAIL_STORAGE_EXTRA_GB"):
        quota.set_extra_gb(admin, 10)


def test_only_administrators_add_storage_and_within_bounds(settings):
    settings.CRMAIL_STORAGE_EXTRA_GB = None
    admin, someone = f.user(admin=True), f.user()
    with pytest.raises(quota.QuotaError, match="Only administrators"):
        quota.set_extra_gb(someone, 5)
    with pytest.raises(quota.QuotaError, match="between 0 and"):
        quota.set_extra_gb(admin, -1)
    with pytest.raises(quota.QuotaError, match="between 0 and"):
        quota.set_extra_gb(admin, quota.MAX_EXTRA_GB + 1)
