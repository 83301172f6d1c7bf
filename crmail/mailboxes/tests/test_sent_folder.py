"""A server without a Sent folder: crmail offers to create it, on a real Dovecot."""

from __future__ import annotations

import pytest
from django.test import Client

from crmail.mailboxes import actions
from crmail.mailboxes.models import Folder
from crmail.mailboxes.tasks import run_sync
from crmail.people.actions import Invalid
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_mailbox_page_creates_the_missing_sent_folder(dovecot):
    login, password = dovecot.new_user()
    rep = f.user("rep@crmail.test", name="Rex Rep")
    mailbox = f.mailbox(dovecot, login, password, owner=rep)
    run_sync(mailbox)
    assert "Sent" not in dovecot.doveadm("mailbox", "list", "-u", login).split()
    assert actions.needs_sent_folder(mailbox)

    client = Client()
    client.force_login(rep)
    page = client.get(f"/settings/mail/{mailbox.pk}/").content.decode()
    assert "This server has no Sent folder." in page and "Create a Sent folder" in page

    done = client.post(f"/settings/mail/{mailbox.pk}/sent-folder/", follow=True)
    html = done.content.decode()
    assert "The folder Sent was created on the server and is the Sent folder" in html
    assert "This server has no Sent folder." not in html
    assert "Sent" in dovecot.doveadm("mailbox", "list", "-u", login).split()
    folder = Folder.objects.get(mailbox=mailbox, role="sent")
    assert (folder.remote_id, folder.exists_on_server) == ("Sent", True)
    assert not actions.needs_sent_folder(mailbox)

    # A sync keeps the role; asking again says there is one already.
    run_sync(mailbox)
    assert Folder.objects.get(mailbox=mailbox, remote_id="Sent").role == "sent"
    with pytest.raises(Invalid) as caught:
        actions.create_sent_folder(rep, mailbox)
    assert "Sent is already this mailbox's Sent folder." in str(caught.value)


def test_a_sent_folder_made_elsewhere_meanwhile_is_used_not_created_twice(dovecot):
    login, password = dovecot.new_user()
    rep = f.user("rep@crmail.test", name="Rex Rep")
    mailbox = f.mailbox(dovecot, login, password, owner=rep)
    run_sync(mailbox)
    dovecot.doveadm("mailbox", "create", "-u", login, "Sent")  # another mail program did
    folder, created = actions.create_sent_folder(rep, mailbox)
    assert (folder.remote_id, folder.role, created) == ("Sent", "sent", False)


def test_pop3_mailboxes_are_told_they_have_no_folders(dovecot):
    login, password = dovecot.new_user()
    rep = f.user("rep@crmail.test", name="Rex Rep")
    mailbox = f.mailbox(dovecot, login, password, owner=rep, protocol="pop3")
    assert not actions.needs_sent_folder(mailbox)
    with pytest.raises(Invalid) as caught:
        actions.create_sent_folder(rep, mailbox)
    assert "only IMAP mailboxes have a Sent folder" in str(caught.value)


@pytest.mark.parametrize("protocol", ["gmail", "graph"])
def test_a_mailbox_sending_through_its_providers_api_is_never_asked_for_a_sent_folder(protocol):
    # Gmail and Outlook file what crmail sends through their API in their own Sent folder;
    # a mailbox that keeps no copy knows only its Inbox, which is no reason to ask.
    mailbox = f.api_mailbox(protocol, "rex@example.test", "token", keeps_copy=False)
    Folder.objects.create(mailbox=mailbox, remote_id="INBOX", name="Inbox", role="inbox")
    assert not actions.needs_sent_folder(mailbox)
    if protocol == "graph":  # sending through SMTP instead: crmail files the copy
        mailbox.smtp_host = "smtp.example.test"
        assert actions.needs_sent_folder(mailbox)
