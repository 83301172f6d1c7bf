"""The Mailbox actions card of a message page, against Dovecot (doveadm is the oracle)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crmail.linking.links import link_messages
from crmail.mailboxes.models import Location
from crmail.mailboxes.tests.served import Served, served, sync
from crmail.people.models import User
from crmail.sharing import actions as sharing_actions
from tests import factories as f
from tests.harness.dovecot import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox(dovecot, org) -> Served:
    return served(dovecot, org.rep)


def page(client, s: Served) -> str:
    response = client.get(reverse("web:message", args=[s.message.pk]))
    assert response.status_code == 200
    return response.content.decode()


def post(client, s: Served, action: str, data: dict[str, str]) -> str:
    url = reverse(f"web:message_{action}", args=[s.message.pk])
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def test_opening_a_message_marks_it_read_on_the_server_unless_turned_off(org, client_for, inbox):
    client = client_for(org.rep)
    assert inbox.on_server() == [("INBOX", False, False)]
    html = page(client, inbox)
    assert inbox.on_server() == [("INBOX", True, False)]
    assert inbox.copies() == [("INBOX", True, False)]
    assert "Mark unread" in html or "Read" in html

    # Turned off on the Account page: "Mark unread" stays unread through the next opening.
    account = client.get(reverse("web:account")).content.decode()
    assert "Mark mail read when I open it in crmail" in account
    assert 'name="mark_read_on_open"' in account and "checked" in account
    done = client.post(reverse("web:account_reading"), {}, follow=True).content.decode()
    assert "Opening a message now leaves it unread." in done
    assert User.objects.get(pk=org.rep.pk).mark_read_on_open is False
    post(client, inbox, "mark", {"seen": "0"})
    assert inbox.on_server() == [("INBOX", False, False)]
    html = page(client, inbox)
    assert inbox.on_server() == [("INBOX", False, False)]
    assert ">Mark read<" in html


def test_flag_move_and_delete_from_the_page_change_the_server_first(org, client_for, inbox):
    client = client_for(org.rep)
    client.post(reverse("web:account_reading"), {})  # leave it unread on opening
    html = post(client, inbox, "mark", {"flagged": "1"})
    assert "Flagged." in html and ">Unflag<" in html
    assert inbox.on_server() == [("INBOX", False, True)] == inbox.copies()

    html = post(client, inbox, "mark", {"seen": "1"})
    assert "Marked read." in html
    assert inbox.on_server() == [("INBOX", True, True)] == inbox.copies()

    archive = inbox.folder("Archive")
    html = post(client, inbox, "move", {"folder": str(archive.pk)})
    assert "Moved to Archive." in html
    assert inbox.on_server() == [("Archive", True, True)] == inbox.copies()

    html = post(client, inbox, "delete", {})
    assert "Moved to Trash." in html and "Delete for good" in html
    assert inbox.on_server() == [("Trash", True, True)] == inbox.copies()
    assert sync(inbox.mailbox).fetched == 0  # nothing for the next sync to undo
    assert inbox.copies() == [("Trash", True, True)]

    url = reverse("web:message_delete", args=[inbox.message.pk])
    response = client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("web:home")
    assert "Deleted for good from the server." in response.content.decode()
    assert inbox.on_server() == [] == inbox.copies()


def test_a_refused_change_leaves_both_sides_as_they_were_and_says_why(org, client_for, inbox):
    client = client_for(org.rep)
    client.post(reverse("web:account_reading"), {})
    archive = inbox.folder("Archive")
    inbox.dovecot.delete_mailbox(inbox.login, "Archive")  # by another mail program
    html = post(client, inbox, "move", {"folder": str(archive.pk)})
    assert "The mail server did not move the message to Archive, so nothing changed" in html
    assert inbox.on_server() == [("INBOX", False, False)] == inbox.copies()

    inbox.mailbox.port = free_port()  # the server is down
    inbox.mailbox.save(update_fields=["port"])
    html = post(client, inbox, "mark", {"flagged": "1"})
    assert "The mail server did not flag the message, so nothing changed" in html
    assert inbox.copies() == [("INBOX", False, False)]
    html = post(client, inbox, "delete", {})
    assert "The mail server did not delete the message" in html
    assert inbox.on_server() == [("INBOX", False, False)] == inbox.copies()


def test_opening_shows_the_page_when_the_server_is_unreachable(org, client_for, inbox):
    inbox.mailbox.port = free_port()
    inbox.mailbox.save(update_fields=["port"])
    html = page(client_for(org.rep), inbox)
    assert "Spring offer" in html and ">Mark read<" in html
    assert inbox.copies() == [("INBOX", False, False)]
    assert inbox.on_server() == [("INBOX", False, False)]


def test_a_colleague_reading_shared_mail_has_no_mailbox_actions(org, client_for, inbox):
    f.contact(org.rep, "carl@client.example")  # the message is on a contact they see
    link_messages([inbox.message.pk])
    sharing_actions.set_sharing(None, org.rep, mode="public")
    client = client_for(org.manager)
    html = page(client, inbox)
    assert "you see it because a colleague shares their mail" in html
    assert ">Flag<" not in html
    assert inbox.on_server() == [("INBOX", False, False)]  # not marked read for the rep
    for action, data in (("mark", {"seen": "1"}), ("move", {"folder": "1"}), ("delete", {})):
        url = reverse(f"web:message_{action}", args=[inbox.message.pk])
        assert client.post(url, data).status_code == 404
    assert inbox.on_server() == [("INBOX", False, False)] == inbox.copies()
    assert Location.objects.filter(message=inbox.message).count() == 1


def test_a_change_made_with_another_client_shows_after_a_sync(org, client_for, inbox):
    client = client_for(org.rep)
    client.post(reverse("web:account_reading"), {})
    inbox.dovecot.flag(inbox.login, "INBOX", inbox.uid, ["\\Flagged", "\\Seen"])
    inbox.dovecot.move(inbox.login, "INBOX", inbox.uid, "Archive")
    sync(inbox.mailbox)
    html = page(client, inbox)
    assert '<span class="folder-name">Archive</span>' in html
    assert "Flagged" in html and ">Unflag<" in html and ">Mark unread<" in html


def test_mail_the_user_sent_without_a_sent_copy_says_so_and_offers_no_actions(org, client_for):
    from crmail.mail.store import store_raw
    from crmail.mailboxes.models import SentMessage

    message = store_raw(
        b"From: rep@crmail.test\r\nTo: carl@client.example\r\nSubject: Quote\r\n\r\nHi"
    )
    SentMessage.objects.create(message=message, sender=org.rep, from_address="rep@crmail.test")
    html = client_for(org.rep).get(reverse("web:message", args=[message.pk])).content.decode()
    assert "You sent this message from crmail, and no mailbox of yours holds a copy" in html
    assert "a colleague shares their mail" not in html and ">Flag<" not in html
