"""Mail sent through crmail and a mailbox's own copy of it (the provider's Sent copy, or
the user's own Sent copy of mail Bcc'd to the dropbox): kept, shown once on records
(decision 056). Against a real SMTP server and a real Dovecot."""

from __future__ import annotations

import pytest

from crmail.dropbox import filing, receive
from crmail.dropbox.addresses import current
from crmail.mail.compose import Draft
from crmail.mail.models import Message
from crmail.mailboxes import sync as sync_module
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.models import Location, Mailbox, SentMessage
from crmail.mailboxes.sync import sync_mailbox
from crmail.sharing.emails import record_emails
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(dovecot, smtp_sink, settings):
    settings.CRMAIL_DROPBOX_DOMAIN = "dropbox.crmail.test"
    user_name, password = dovecot.new_user()
    dovecot.create_mailbox(user_name, "Sent")
    rep = f.user("rep@crmail.test")
    mailbox = Mailbox.objects.create(
        owner=rep,
        email="rep@crmail.test",
        protocol="imap",
        host="127.0.0.1",
        port=dovecot.imap_port,
        security="none",
        login=user_name,
        secret=password,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_security="none",
        smtp_same_credentials=False,
        store_sent_on_server=False,  # as with Gmail's SMTP, which files the copy itself
    )
    client = f.contact(rep, "client@example.com")
    return dovecot, user_name, smtp_sink, rep, mailbox, client


def sync(mailbox: Mailbox) -> None:
    driver = open_driver(mailbox)
    try:
        sync_mailbox(mailbox, driver)
    finally:
        driver.close()


def on_record(viewer, client) -> list[int]:
    return list(record_emails(viewer, "contacts", client.pk).values_list("pk", flat=True))


# A first sync large enough for parsing workers stores its messages with their header
# fields (decision 065); a small one parses them after the store.
@pytest.mark.parametrize("headers_first", [False, True])
def test_the_providers_sent_copy_is_kept_but_the_record_shows_the_mail_once(
    setup, django_capture_on_commit_callbacks, monkeypatch, headers_first
):
    from crmail.mailboxes.sending import send_message

    if headers_first:
        monkeypatch.setattr(sync_module, "PIPELINE_MIN_MESSAGES", 1)
    dovecot, user_name, sink, rep, mailbox, client = setup
    colleague = f.user("boss@crmail.test", is_superuser=True)
    with django_capture_on_commit_callbacks(execute=True):
        sent = send_message(
            rep,
            Draft(
                sender="rep@crmail.test",
                to=["client@example.com"],
                bcc=["boss@crmail.test"],
                subject="Your offer",
                text="Here it is.",
            ),
            record_module="contacts",
            record_id=client.pk,
        )
    [out] = sink.wait_for(1, 5)
    # The provider files its own copy in Sent: the same Message-ID, other bytes.
    dovecot.deliver(
        user_name, b"Received: by smtp.provider.test; 5 Dec 2026\r\n" + out.data, "Sent"
    )
    with django_capture_on_commit_callbacks(execute=True):
        sync(mailbox)

    [filed] = Location.objects.filter(mailbox=mailbox, folder__role="sent")
    copy = Message.objects.get(pk=filed.message_id)
    assert copy.pk != sent.message_id and copy.message_id == sent.message.message_id
    assert copy.copy_of_id == sent.message_id  # kept, in the owner's Sent folder
    assert on_record(rep, client) == [sent.message_id]
    assert on_record(colleague, client) == [sent.message_id]


def test_a_sent_copy_synced_before_the_dropbox_copy_is_filed_shows_once(
    setup, django_capture_on_commit_callbacks
):
    dovecot, user_name, _, rep, mailbox, client = setup
    raw = (
        b"From: Rep <rep@crmail.test>\r\nTo: client@example.com\r\nSubject: Proposal\r\n"
        b"Message-ID: <proposal-1@crmail.test>\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
        b"\r\nThe proposal.\r\n"
    )
    # The user's own mail client filed its Sent copy; crmail synced it first.
    dovecot.deliver(user_name, raw, "Sent")
    with django_capture_on_commit_callbacks(execute=True):
        sync(mailbox)
    [synced] = Message.objects.all()
    assert on_record(rep, client) == [synced.pk]

    # Then the copy Bcc'd to the dropbox arrives (other bytes: its own trace headers).
    box = current(rep)
    with django_capture_on_commit_callbacks(execute=True):
        [delivery] = receive.accept(
            b"Received: from laptop by mx.crmail.test\r\n" + raw,
            "rep@crmail.test",
            [box],
            "127.0.0.1",
        )
        filing.file(delivery.pk)
    dropped = SentMessage.objects.get(source="dropbox").message
    synced.refresh_from_db()
    assert synced.copy_of_id == dropped.pk
    assert on_record(rep, client) == [dropped.pk]
    assert Location.objects.filter(message=synced, mailbox=mailbox).exists()


def test_the_same_message_id_from_someone_else_is_not_a_copy(
    setup, django_capture_on_commit_callbacks
):
    from crmail.mailboxes.sending import send_message

    dovecot, _, sink, rep, _, _ = setup
    with django_capture_on_commit_callbacks(execute=True):
        sent = send_message(
            rep, Draft(sender="rep@crmail.test", to=["client@example.com"], subject="Hi", text=".")
        )
    [out] = sink.wait_for(1, 5)
    # A colleague's mailbox holds the message as received: not the sender's own copy.
    other_user, other_password = dovecot.new_user()
    colleague = f.user("ann@crmail.test")
    theirs = f.mailbox(dovecot, other_user, other_password, owner=colleague)
    dovecot.deliver(other_user, b"Received: by mx.crmail.test\r\n" + out.data)
    with django_capture_on_commit_callbacks(execute=True):
        sync(theirs)
    received = Message.objects.exclude(pk=sent.message_id).get()
    assert received.copy_of_id is None
