"""POP3 against a real Dovecot: long lines, bodies that look like replies, deletion only
of what crmail holds whole."""

from __future__ import annotations

import pytest

from crmail.mail.store import raw_bytes
from crmail.mailboxes import sync as sync_module
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.drivers.pop3 import Pop3Driver
from crmail.mailboxes.models import Location, Mailbox
from crmail.mailboxes.sync import sync_mailbox
from crmail.mailboxes.verify import verify_mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db


def mail(n: int, body: bytes = b"") -> bytes:
    return (
        f"From: Client {n} <client{n}@example.com>\r\nTo: rep@crmail.test\r\n"
        f"Subject: Message {n}\r\nMessage-ID: <p{n}@example.com>\r\n\r\n"
    ).encode() + (body or f"Body {n}\r\n".encode())


def sync(mailbox: Mailbox):
    driver = open_driver(mailbox)
    try:
        return sync_mailbox(mailbox, driver)
    finally:
        driver.close()


def uidl(server, user: str, uid: int) -> str:
    """Dovecot's UIDL for a UID under the harness's pop3_uidl_format (%08Xu%08Xv)."""
    validity = server.status(user, "INBOX", ("uidvalidity",))["uidvalidity"]
    return f"{uid:08x}{validity:08x}"


def stored_by_uidl(mailbox: Mailbox) -> dict[str, bytes]:
    return {
        loc.remote_id: raw_bytes(loc.message)
        for loc in Location.objects.filter(mailbox=mailbox).select_related("message")
    }


LONG_LINE = mail(4, b"x" * 2100 + b"\r\nafter the long line\r\n")
# A line past poplib's limit, then what a reader that lost its place takes for the next reply.
CRAFTED = mail(
    5,
    b"y" * 3000 + b"\r\n+OK 40 octets\r\nFrom: someone@else.example\r\n"
    b"Message-ID: <forged@else.example>\r\n\r\nforged\r\n.\r\n+OK\r\n",
)


@pytest.mark.parametrize("keep", [True, False], ids=["kept", "deleted"])
def test_a_long_body_line_costs_no_message(dovecot, dovecot_user, keep):
    user, password = dovecot_user
    sent = [mail(n) for n in range(4)] + [LONG_LINE] + [mail(n) for n in range(5, 8)]
    expected = {uidl(dovecot, user, dovecot.deliver(user, raw)): raw for raw in sent}
    mailbox = f.mailbox(dovecot, user, password, protocol="pop3", keep_on_server=keep)
    report = sync(mailbox)
    assert report.fetched == 8
    assert stored_by_uidl(mailbox) == expected
    assert len(dovecot.messages(user)) == (8 if keep else 0)
    assert sync(mailbox).fetched == 0


@pytest.mark.parametrize("keep", [True, False], ids=["kept", "deleted"])
def test_a_body_that_looks_like_a_reply_stays_inside_its_message(dovecot, dovecot_user, keep):
    user, password = dovecot_user
    sent = [mail(1), CRAFTED, mail(2), mail(3), CRAFTED.replace(b"<p5@", b"<p6@")]
    expected = {uidl(dovecot, user, dovecot.deliver(user, raw)): raw for raw in sent}
    mailbox = f.mailbox(dovecot, user, password, protocol="pop3", keep_on_server=keep)
    assert sync(mailbox).fetched == 5
    assert stored_by_uidl(mailbox) == expected
    assert len(dovecot.messages(user)) == (5 if keep else 0)


def test_the_server_deletes_only_mail_whose_commit_is_on_disk(dovecot, dovecot_user, monkeypatch):
    # SQLite syncs its log only at checkpoints: a power cut after the server deleted the
    # mail must not take crmail's copy too.
    user, password = dovecot_user
    for n in range(3):
        dovecot.deliver(user, mail(n))
    steps: list[str] = []
    monkeypatch.setattr(
        sync_module,
        "sync_commits",
        lambda: steps.append(f"synced with {Location.objects.count()} stored"),
    )
    acknowledge = Pop3Driver.acknowledge

    def acknowledged(self, folder, stored):
        steps.append(f"{len(stored)} may go")
        acknowledge(self, folder, stored)

    monkeypatch.setattr(Pop3Driver, "acknowledge", acknowledged)
    mailbox = f.mailbox(dovecot, user, password, protocol="pop3", keep_on_server=False)
    assert sync(mailbox).fetched == 3
    assert steps == ["synced with 3 stored", "3 may go"]
    assert dovecot.messages(user) == []


def test_verify_compares_each_uidl_and_size_on_pop3(dovecot, dovecot_user):
    user, password = dovecot_user
    for raw in (mail(1), LONG_LINE, mail(2)):
        dovecot.deliver(user, raw)
    mailbox = f.mailbox(dovecot, user, password, protocol="pop3")
    sync(mailbox)
    driver = open_driver(mailbox)
    try:
        report = verify_mailbox(mailbox, driver)
    finally:
        driver.close()
    assert report.agrees, report
    (check,) = report.folders
    assert (check.on_server, check.stored) == (3, 3)

    # A stored copy that is not what the server holds: a size that differs is counted.
    loc = Location.objects.filter(mailbox=mailbox).order_by("remote_id")[1]
    from crmail.mail.store import store_raw

    loc.message = store_raw(LONG_LINE[:-200] + b"\r\n")
    loc.save(update_fields=["message"])
    driver = open_driver(mailbox)
    try:
        report = verify_mailbox(mailbox, driver)
    finally:
        driver.close()
    assert not report.agrees
    assert report.folders[0].size_mismatches == [loc.remote_id]


@pytest.mark.parametrize("broken_on", [{1}, {1, 2}], ids=["once", "twice"])
def test_a_server_out_of_step_is_asked_again_on_a_new_connection(broken_on):
    from crmail.mailboxes.drivers.base import DriverError
    from crmail.mailboxes.drivers.tests.test_pop3_session import FakeServer

    server = FakeServer(out_of_step=frozenset(broken_on))
    mailbox = f.mailbox(server, "u", "p", protocol="pop3", keep_on_server=False)
    if len(broken_on) == 1:
        assert sync(mailbox).fetched == 3
        assert sorted(stored_by_uidl(mailbox)) == ["id1", "id2", "id3"]
        assert server.deleted == {1, 2, 3}
    else:  # out of step again: the sync stops with the error, nothing deleted
        with pytest.raises(DriverError):
            sync(mailbox)
        assert stored_by_uidl(mailbox) == {}  # the batch was never committed
        assert server.deleted == set()
        mailbox.refresh_from_db()
        assert mailbox.last_error_kind == "protocol"
