"""At 100 % of the quota (SPEC F11), against a real Dovecot: new mail keeps its headers,
participants and links, its body waits on the server (nothing deleted there, nothing in the
blob store), its owner is told; once the quota grows the bodies arrive, and one can be
fetched at once on demand."""

from __future__ import annotations

import pytest

from crmail.events import dispatch
from crmail.linking.models import Link
from crmail.mail.models import Message, WaitingBody
from crmail.mail.store import raw_bytes
from crmail.mailboxes import bodies, quota, usage
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.models import WHOLE, Location, Mailbox, StorageUsage
from crmail.mailboxes.sync import sync_mailbox
from crmail.notifications.models import Kind, Notification
from crmail.storage import actions as storage_actions
from crmail.storage import thresholds
from crmail.storage.models import Alert
from tests import factories as f

pytestmark = pytest.mark.django_db
KB = 1000


def sync(mailbox: Mailbox):
    driver = open_driver(mailbox)
    try:
        return sync_mailbox(mailbox, driver)
    finally:
        driver.close()


def mail(n: int, sender: str = "", kb: int = 6) -> bytes:
    sender = sender or f"client{n}@example.com"
    return (
        f"From: Client {n} <{sender}>\r\nTo: rep@crmail.test\r\n"
        f"Subject: Order {n}\r\nMessage-ID: <order{n}@example.com>\r\n"
        f"Date: Mon, 02 Nov 2026 10:{n:02d}:00 +0000\r\n\r\n"
        f"Body of order {n}. " + "x" * (kb * KB) + "\r\n"
    ).encode()


@pytest.fixture
def admin(settings):
    """An administrator, and licences of 10 kB: with the mailbox's owner, a quota of
    20 kB. Messages of 6 kB: three leave room, a fourth is stored and crosses the quota,
    the bodies of those that come after wait."""
    settings.STORAGE_BYTES_PER_LICENCE = 10 * KB
    settings.CRMAIL_STORAGE_EXTRA_GB = None
    quota.forget()
    yield f.user(admin=True)
    quota.forget()


def used(user_id: int) -> int:
    row = StorageUsage.objects.filter(user_id=user_id, mailbox_id=WHOLE).first()
    return row.bytes if row else 0


def test_at_the_quota_new_mail_keeps_its_headers_and_links_and_its_body_waits(
    dovecot, admin, django_capture_on_commit_callbacks
):
    name, password = dovecot.new_user()
    for n in range(3):
        dovecot.deliver(name, mail(n))
    mailbox = f.mailbox(dovecot, name, password)
    owner = mailbox.owner
    sync(mailbox)
    assert not WaitingBody.objects.exists()
    before = used(owner.pk)
    assert 18 * KB < before <= 20 * KB

    jane = f.contact(owner, "jane@acme.test", first_name="Jane")
    for n in (3, 4, 5):
        dovecot.deliver(name, mail(n, "jane@acme.test"))
    with django_capture_on_commit_callbacks(execute=True):
        sync(mailbox)
    dispatch.dispatch("linking")
    crossing = Message.objects.get(subject="Order 3")
    assert "Body of order 3" in crossing.body_text  # stored whole: it crossed the quota
    before += crossing.size
    late = list(Message.objects.filter(subject__in=["Order 4", "Order 5"]))
    assert len(late) == 2
    for message in late:
        # Headers, participants and links are here; the body is not.
        assert message.from_address == "jane@acme.test"
        assert message.participants.filter(role="from", address="jane@acme.test").exists()
        assert Link.objects.filter(message=message, module="contacts", record_id=jane.pk).exists()
        assert WaitingBody.objects.filter(message=message).exists()
        assert "Body of order" not in message.body_text
        assert raw_bytes(message).endswith(b"\r\n\r\n")  # the header section only
    # Nothing of them in the store: the figure did not move, and it agrees with a recount.
    assert used(owner.pk) == before
    assert usage.recount().corrected == []
    assert used(owner.pk) == before
    # Nothing was deleted on the server, nor in crmail, to make room.
    assert len(dovecot.messages(name, "INBOX")) == 6
    assert Location.objects.filter(mailbox=mailbox).count() == 6

    # The owner is told, once while unread; administrators are warned at 100 %.
    checked = thresholds.check()
    assert 100 in checked.raised and checked.owners_told == 1
    told = Notification.objects.get(user=owner, kind=Kind.STORAGE)
    assert "2 messages arrived without the body" in told.title
    assert Notification.objects.filter(user=admin, kind=Kind.STORAGE, link="/settings/storage/")
    assert thresholds.check().owners_told == 0

    # The quota grows (an administrator adds storage): the bodies arrive at once.
    storage_actions.set_extra_gb(admin, 1)
    assert not WaitingBody.objects.exists()
    for message in Message.objects.filter(pk__in=[m.pk for m in late]):
        assert "Body of order" in message.body_text
        assert raw_bytes(message) == mail(int(message.subject[-1]), "jane@acme.test")
        assert Link.objects.filter(message=message, module="contacts", record_id=jane.pk).exists()
    assert used(owner.pk) == before + sum(len(raw_bytes(m)) for m in late)
    assert usage.recount().corrected == []
    # Below the thresholds again (checked as the quota changed): the warnings are
    # cleared, to be told again at the next crossing.
    assert not Alert.objects.exists()


def test_a_backup_says_which_messages_went_in_without_their_body(dovecot, admin, tmp_path, capsys):
    import mailbox as mailboxes

    from crmail.config.cli import main

    name, password = dovecot.new_user()
    for n in range(5):  # three fit, the fourth crosses the quota, the fifth's body waits
        dovecot.deliver(name, mail(n))
    mailbox = f.mailbox(dovecot, name, password)
    sync(mailbox)
    assert WaitingBody.objects.filter(message__subject="Order 4").exists()

    path = tmp_path / "rep.mbox"
    assert main(["backup", mailbox.owner.email, "-o", str(path)]) == 0
    _, err = capsys.readouterr()
    assert "Backed up 5 messages" in err
    assert "1 message went in without the body" in err and "on the mail server only" in err
    box = mailboxes.mbox(path, create=False)
    got = {m["Subject"]: m for m in box}
    assert sorted(got) == [f"Order {n}" for n in range(5)]
    waiting = got["Order 4"]
    assert "storage" in waiting["X-Crmail-Body-Waiting"]
    assert waiting["Message-ID"] == "<order4@example.com>" and not waiting.get_payload().strip()
    for n in range(4):  # the others whole, unmarked
        assert got[f"Order {n}"]["X-Crmail-Body-Waiting"] is None
        assert f"Body of order {n}." in got[f"Order {n}"].get_payload()


def test_a_body_is_fetched_on_demand_whatever_room_is_left(dovecot, admin):
    name, password = dovecot.new_user()
    for n in range(5):
        dovecot.deliver(name, mail(n))
    mailbox = f.mailbox(dovecot, name, password)
    sync(mailbox)
    waiting = Message.objects.get(waiting_body__isnull=False)
    assert bodies.fetch_while_room().stored == 0  # no room: the job leaves it
    from crmail.api.tests.conftest import ApiClient

    asked = ApiClient(mailbox.owner).post(f"/messages/{waiting.pk}/fetch-body")
    assert asked.status_code == 200
    assert asked.json() == {"body_waits": False, "message": "The whole message is here now."}
    again = ApiClient(mailbox.owner).post(f"/messages/{waiting.pk}/fetch-body").json()
    assert again["message"] == "The message is whole already."
    waiting.refresh_from_db()
    assert "Body of order 4" in waiting.body_text
    assert usage.recount().corrected == []


def test_a_body_the_server_no_longer_has_stays_waiting_said_in_words(dovecot, admin):
    name, password = dovecot.new_user()
    uids = [dovecot.deliver(name, mail(n)) for n in range(5)]
    mailbox = f.mailbox(dovecot, name, password)
    sync(mailbox)
    waiting = Message.objects.get(waiting_body__isnull=False)
    dovecot.expunge(name, "INBOX", uids[4])
    sync(mailbox)  # its only copy went
    done = bodies.fetch_now(waiting.pk)
    assert done.stored == 0
    assert done.problems and "cannot be fetched" in done.problems[0]


def test_pop3_leaves_a_waiting_body_on_the_server_until_it_is_stored(dovecot, admin):
    name, password = dovecot.new_user()
    for n in range(5):
        dovecot.deliver(name, mail(n))
    mailbox = f.mailbox(dovecot, name, password, protocol="pop3", keep_on_server=False)
    sync(mailbox)
    assert WaitingBody.objects.count() == 1
    # The four stored are let go by the server; the one whose body waits stays.
    assert [m["message_id"] for m in dovecot.messages(name, "INBOX")] == ["<order4@example.com>"]
    sync(mailbox)
    assert len(dovecot.messages(name, "INBOX")) == 1
    storage_actions.set_extra_gb(admin, 1)
    assert not WaitingBody.objects.exists()
    sync(mailbox)  # stored whole now: the server may let it go
    assert dovecot.messages(name, "INBOX") == []
    assert usage.recount().corrected == []
