"""End to end against Dovecot: mail delivered to two users' mailboxes, synced by crmail,
lands on the right contacts and each colleague sees, through the API and the contact's
page, exactly what the owners' sharing settings allow (SPEC F4, F5).

Rex shares publicly with everyone, his own domain excluded; Pia keeps her mail private.
The client writes to Rex, to Pia, and to both (one message, a copy in each mailbox); a
colleague writes to Rex from inside the company (internal: stays Rex's).
"""

from __future__ import annotations

import pytest
from django.test import Client

from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.sync import sync_mailbox
from crmail.people.models import ModuleDefault
from crmail.sharing import actions as sharing
from tests import factories as f

pytestmark = pytest.mark.django_db


def mail(subject: str, sender: str, to: str, n: int) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <e2e-{n}@customer.example>\r\n"
        f"Date: Mon, 02 Nov 2026 10:{n:02d}:00 +0000\r\n\r\n{subject}, body.\r\n"
    ).encode()


def sync(mailbox) -> None:
    driver = open_driver(mailbox)
    try:
        sync_mailbox(mailbox, driver)
    finally:
        driver.close()


def api_subjects(viewer, contact, **params: object) -> set[str]:
    answer = Client().get(
        f"/api/v1/contacts/{contact.pk}/emails",
        params,
        HTTP_AUTHORIZATION=f"Bearer {f.token(viewer)}",
    )
    assert answer.status_code == 200, answer.content
    return {item["subject"] for item in answer.json()["items"]}


def page_shows(viewer, contact, subject: str) -> bool:
    client = Client()
    client.force_login(viewer)
    answer = client.get(f"/contacts/{contact.pk}/")
    assert answer.status_code == 200
    return subject in answer.content.decode()


@pytest.fixture
def synced(org, dovecot, django_capture_on_commit_callbacks):
    ModuleDefault.objects.filter(module="contacts").update(level="public_read")
    sharing.set_sharing(
        None, org.rep, mode="public", audience="everyone", excluded_domains=["crmail.test"]
    )
    sharing.set_sharing(None, org.peer, mode="private")
    rex_login, rex_password = dovecot.new_user("rex")
    pia_login, pia_password = dovecot.new_user("pia")
    rex_box = f.mailbox(dovecot, rex_login, rex_password, owner=org.rep, email="rep@crmail.test")
    pia_box = f.mailbox(dovecot, pia_login, pia_password, owner=org.peer, email="peer@crmail.test")
    client = f.contact(org.rep, "client@customer.example")
    colleague = f.contact(org.rep, "colleague@crmail.test")

    customer = "Cleo Client <client@customer.example>"
    dovecot.deliver(rex_login, mail("Quote for Rex", customer, "rep@crmail.test", 1))
    dovecot.deliver(pia_login, mail("Pia's private talk", customer, "peer@crmail.test", 2))
    both = mail("To both of you", customer, "rep@crmail.test, peer@crmail.test", 3)
    dovecot.deliver(rex_login, both)
    dovecot.deliver(pia_login, both)
    internal = mail("Internal pricing", "colleague@crmail.test", "rep@crmail.test", 4)
    dovecot.deliver(rex_login, internal)
    with django_capture_on_commit_callbacks(execute=True):
        sync(rex_box)
        sync(pia_box)
    return client, colleague


def test_each_viewer_sees_what_the_owners_share(org, synced):
    client, colleague = synced
    shared = {"Quote for Rex", "To both of you"}
    assert api_subjects(org.rep, client) == shared
    # Pia sees her own mail and what Rex shares.
    assert api_subjects(org.peer, client) == shared | {"Pia's private talk"}
    # Their manager sees what Rex shares, nothing of what Pia keeps private.
    assert api_subjects(org.manager, client) == shared
    assert api_subjects(org.outsider_manager, client) == shared
    assert api_subjects(org.admin, client) == shared  # administrators get no extra mail
    # Internal mail (every other participant at Rex's excluded domain) stays Rex's.
    assert api_subjects(org.rep, colleague) == {"Internal pricing"}
    for viewer in (org.peer, org.manager, org.outsider_manager, org.admin):
        assert api_subjects(viewer, colleague) == set(), viewer.email
    # The contact's page agrees with the API.
    assert page_shows(org.manager, client, "Quote for Rex")
    assert not page_shows(org.manager, client, "Pia&#x27;s private talk")
    assert page_shows(org.peer, client, "Pia&#x27;s private talk")


def test_a_message_in_two_mailboxes_is_stored_once_and_listed_once(org, synced):
    from crmail.mail.models import Message
    from crmail.mailboxes.models import Location

    message = Message.objects.get(message_id="e2e-3@customer.example")
    assert Location.objects.filter(message=message).count() == 2
    client, _ = synced
    answer = (
        Client()
        .get(
            f"/api/v1/contacts/{client.pk}/emails",
            HTTP_AUTHORIZATION=f"Bearer {f.token(org.manager)}",
        )
        .json()
    )
    assert [item["subject"] for item in answer["items"]].count("To both of you") == 1
    assert answer["count"] == 2


def test_the_by_user_view_does_not_reveal_a_private_users_copy(org, synced):
    client, _ = synced
    # The manager sees "To both of you" through Rex's copy; Pia's copy is private.
    assert api_subjects(org.manager, client, view="user", user=org.rep.pk) == {
        "Quote for Rex",
        "To both of you",
    }
    assert api_subjects(org.manager, client, view="user", user=org.peer.pk) == set()
    assert api_subjects(org.peer, client, view="user", user=org.peer.pk) == {
        "Pia's private talk",
        "To both of you",
    }
