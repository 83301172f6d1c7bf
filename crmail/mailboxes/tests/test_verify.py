"""`crmail mailbox verify` on a complete mailbox of odd messages agrees, over IMAP and POP3."""

from __future__ import annotations

import pytest

from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.sync import sync_mailbox
from crmail.mailboxes.verify import verify_mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db

ODD = [
    # A NUL in the Message-ID (Dovecot serves it as 0x80 over IMAP, as NUL over POP3).
    b"From: a@example.com\r\nMessage-ID: <nul\x00id@example.com>\r\nSubject: nul\r\n\r\nx\r\n",
    # No header the parser can read before the Message-ID line.
    b"this is not a header\r\nMessage-ID: <after-garbage@example.com>\r\n\r\nbody\r\n",
    # Bare CR line ends.
    b"From: b@example.com\rMessage-ID: <bare-cr@example.com>\rSubject: cr\r\rbody\r",
    # 8-bit bytes and a folded Message-ID.
    b"From: c@example.com\r\nMessage-ID:\r\n <folded\xe9@example.com>\r\n\r\nbody\r\n",
    # Two Message-ID lines, a bare one with spaces.
    b"Message-ID: not an id\r\nMessage-ID: <second@example.com>\r\n\r\nbody\r\n",
    b"From: d@example.com\r\nSubject: ordinary\r\nMessage-ID: <ok@example.com>\r\n\r\nok\r\n",
]


def sync_then_verify(mailbox: Mailbox):
    driver = open_driver(mailbox)
    try:
        sync_mailbox(mailbox, driver)
    finally:
        driver.close()
    driver = open_driver(mailbox)
    try:
        return verify_mailbox(mailbox, driver)
    finally:
        driver.close()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_verify_reads_odd_message_ids_the_same_on_both_sides(dovecot, dovecot_user, protocol):
    user, password = dovecot_user
    for raw in ODD:
        dovecot.deliver(user, raw)
    mailbox = f.mailbox(dovecot, user, password, protocol=protocol)
    report = sync_then_verify(mailbox)
    (check,) = report.folders
    assert (check.on_server, check.stored) == (len(ODD), len(ODD))
    assert check.message_id_mismatches == []
    assert report.agrees, report
