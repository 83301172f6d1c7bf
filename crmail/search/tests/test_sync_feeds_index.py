"""A sync from a real Dovecot feeds the index as its parse results commit: what arrived is
found at once, by a word of its body and by its attachment's name."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from crmail.events import dispatch
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.sync import sync_mailbox
from crmail.search.queries import search_messages
from crmail.search.query import parse
from tests import factories as f

pytestmark = pytest.mark.django_db


def mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Client {n} <client{n}@example.com>"
    msg["To"] = "rep@crmail.test"
    msg["Subject"] = f"Order {n}"
    msg["Message-ID"] = f"<order{n}@example.com>"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    msg.set_content(f"Quantity {n} of widgets, zebra{n}.")
    msg.add_attachment(b"x", maintype="application", subtype="pdf", filename=f"invoice-{n}.pdf")
    return msg.as_bytes()


def test_synced_mail_is_found_once_its_parse_commits(dovecot, django_capture_on_commit_callbacks):
    name, password = dovecot.new_user()
    mailbox = f.mailbox(dovecot, name, password)
    for n in range(3):
        dovecot.deliver(name, mail(n))
    with django_capture_on_commit_callbacks(execute=True):
        driver = open_driver(mailbox)
        try:
            sync_mailbox(mailbox, driver)
        finally:
            driver.close()
    owner = mailbox.owner
    assert [h.message.subject for h in search_messages(owner, parse("zebra1")).hits] == ["Order 1"]
    assert search_messages(owner, parse("invoice")).count == 3
    assert search_messages(owner, parse("from:client2")).count == 1


def test_the_sync_only_enqueues_the_indexing(dovecot, django_capture_on_commit_callbacks):
    """Reading and writing the documents is a job's work, not the syncing thread's: with
    the queue holding its jobs, a finished sync has indexed nothing; the job then does."""
    from django.conf import settings

    huey = settings.HUEY
    name, password = dovecot.new_user()
    mailbox = f.mailbox(dovecot, name, password)
    dovecot.deliver(name, mail(7))
    huey.immediate = False
    try:
        with django_capture_on_commit_callbacks(execute=True):
            driver = open_driver(mailbox)
            try:
                sync_mailbox(mailbox, driver)
            finally:
                driver.close()
        assert search_messages(mailbox.owner, parse("zebra7")).count == 0
        jobs = []
        while (task := huey.dequeue()) is not None:
            jobs.append(task)
        assert ("events.dispatch", ("search",)) in {(task.name, task.args) for task in jobs}
        for task in jobs:  # what the job runs (its worker's wrapper would close the test's
            if task.name == "events.dispatch":  # database connection)
                dispatch.dispatch(*task.args)
    finally:
        huey.immediate = True
    assert search_messages(mailbox.owner, parse("zebra7")).count == 1
