"""Hostile mail delivered into Dovecot is stored whole, byte for byte, over IMAP and POP3,
with and without deletion on the server, and `verify` agrees."""

from __future__ import annotations

import pytest

from crmail.mail.models import Message, ParseState
from crmail.mail.store import raw_bytes
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.models import Location, Mailbox
from crmail.mailboxes.sync import sync_mailbox
from crmail.mailboxes.verify import verify_mailbox
from tests import factories as f
from tests.hostile import as_served, hostile_corpus

pytestmark = pytest.mark.django_db


def run(mailbox: Mailbox, what) -> object:
    driver = open_driver(mailbox)
    try:
        return what(mailbox, driver)
    finally:
        driver.close()


def deliver(server, user: str, corpus: dict[str, bytes]) -> dict[int, bytes]:
    """{uid: raw} of each message saved with doveadm."""
    return {server.deliver(user, raw): raw for raw in corpus.values()}


def server_ids(server, user: str, uids: dict[int, bytes], protocol: str) -> dict[str, bytes]:
    """{the id crmail stores (UID, or UIDL under %08Xu%08Xv): the bytes Dovecot serves}."""
    validity = server.status(user, "INBOX", ("uidvalidity",))["uidvalidity"]
    return {
        (str(uid) if protocol == "imap" else f"{uid:08x}{validity:08x}"): as_served(raw, protocol)
        for uid, raw in uids.items()
    }


def stored(mailbox: Mailbox) -> dict[str, bytes]:
    return {
        loc.remote_id: raw_bytes(loc.message)
        for loc in Location.objects.filter(mailbox=mailbox).select_related("message")
    }


def assert_stored_whole(server, user, corpus, protocol, *, keep=True) -> None:
    uids = deliver(server, user, corpus)
    expected = server_ids(server, user, uids, protocol)
    rows = server.doveadm_json("fetch", "-u", user, "uid size.virtual", "mailbox", "INBOX", "all")
    # doveadm's own count of each message's bytes as served agrees with the expectation.
    assert {int(r["uid"]): int(r["size.virtual"]) for r in rows} == {
        uid: len(as_served(raw, protocol)) for uid, raw in uids.items()
    }
    mailbox = f.mailbox(
        server, user, server.users.get(user) or "", protocol=protocol, keep_on_server=keep
    )
    report = run(mailbox, sync_mailbox)
    assert report.fetched == len(corpus) and not report.errors
    got = stored(mailbox)
    assert set(got) == set(expected)
    for rid, raw in expected.items():
        assert got[rid] == raw, rid
    assert len(server.messages(user)) == (len(corpus) if keep else 0)
    assert not Message.objects.filter(parse_state=ParseState.PENDING).exists()
    assert run(mailbox, verify_mailbox).agrees
    assert run(mailbox, sync_mailbox).fetched == 0


@pytest.mark.parametrize(
    ("protocol", "keep"),
    [("imap", True), ("pop3", True), ("pop3", False)],
    ids=["imap", "pop3-kept", "pop3-deleted"],
)
def test_hostile_mail_is_stored_byte_for_byte(dovecot, dovecot_user, protocol, keep):
    user, password = dovecot_user
    dovecot.users[user] = password
    assert_stored_whole(dovecot, user, hostile_corpus(big=False), protocol, keep=keep)


def test_a_30_mb_attachment_is_stored_whole_over_imap_and_deleted_only_once_stored_over_pop3(
    dovecot,
):
    big = {"attachment-30mb": hostile_corpus()["attachment-30mb"]}
    for protocol, keep in (("imap", True), ("pop3", False)):
        user, password = dovecot.new_user()
        dovecot.users[user] = password
        assert_stored_whole(dovecot, user, big, protocol, keep=keep)
