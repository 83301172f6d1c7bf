"""``PATCH /messages/{id}``, ``POST /messages/{id}/move``, ``DELETE /messages/{id}`` and the
state ``GET /messages/{id}`` carries, against Dovecot (doveadm is the oracle)."""

from __future__ import annotations

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.linking.links import link_messages
from crmail.mailboxes.tests.served import Served, served, sync
from crmail.sharing import actions as sharing_actions
from tests import factories as f
from tests.harness.dovecot import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox(dovecot, org) -> Served:
    return served(dovecot, org.rep)


def folder_names(body) -> list[str]:  # type: ignore[no-untyped-def]
    return [folder["name"] for folder in body["folders"]]


def test_reading_carries_the_state_and_does_not_mark_read(org, inbox):
    api = ApiClient(org.rep)
    body = api.get(f"/messages/{inbox.message.pk}").json()
    assert (body["seen"], body["flagged"]) == (False, False)
    assert body["folders"] == [
        {
            "id": inbox.folder("INBOX").pk,
            "name": "Inbox",
            "role": "inbox",
            "mailbox_id": inbox.mailbox.pk,
        }
    ]
    assert inbox.on_server() == [("INBOX", False, False)]


def test_each_action_changes_the_server_then_crmail(org, inbox):
    api, path = ApiClient(org.rep), f"/messages/{inbox.message.pk}"
    body = api.patch(path, {"seen": True, "flagged": True}).json()
    assert (body["seen"], body["flagged"]) == (True, True)
    assert inbox.on_server() == [("INBOX", True, True)] == inbox.copies()
    body = api.patch(path, {"seen": False}).json()
    assert (body["seen"], body["flagged"]) == (False, True)
    assert inbox.on_server() == [("INBOX", False, True)] == inbox.copies()

    response = api.post(f"{path}/move", {"folder_id": inbox.folder("Archive").pk})
    assert response.status_code == 200 and folder_names(response.json()) == ["Archive"]
    assert inbox.on_server() == [("Archive", False, True)] == inbox.copies()

    response = api.delete(path)
    assert response.status_code == 200 and folder_names(response.json()) == ["Trash"]
    assert inbox.on_server() == [("Trash", False, True)] == inbox.copies()
    assert sync(inbox.mailbox).fetched == 0

    response = api.delete(path)  # from Trash: for good
    assert response.status_code == 200
    assert response.json()["folders"] == [] and response.json()["seen"] is None
    assert inbox.on_server() == [] == inbox.copies()


def test_bad_input_is_named(org, inbox):
    api, path = ApiClient(org.rep), f"/messages/{inbox.message.pk}"
    assert api.patch(path, {}).status_code == 422
    assert api.patch(path, {"seen": "yes"}).status_code == 422
    assert fields(api.patch(path, {"seen": "yes"})) == {"seen"}
    other = served(inbox.dovecot, org.peer, "A colleague's mailbox")
    response = api.post(f"{path}/move", {"folder_id": other.folder("Archive").pk})
    assert response.status_code == 422 and fields(response) == {"folder_id"}
    assert api.post(f"{path}/move", {"folder_id": 10**9}).status_code == 422
    assert inbox.on_server() == [("INBOX", False, False)] == inbox.copies()


def test_a_refusal_answers_502_and_changes_nothing(org, inbox):
    api, path = ApiClient(org.rep), f"/messages/{inbox.message.pk}"
    archive = inbox.folder("Archive")
    inbox.dovecot.delete_mailbox(inbox.login, "Archive")  # by another mail program
    response = api.post(f"{path}/move", {"folder_id": archive.pk})
    assert response.status_code == 502
    assert "did not move the message to Archive, so nothing changed" in response.json()["detail"]
    assert inbox.on_server() == [("INBOX", False, False)] == inbox.copies()

    inbox.mailbox.port = free_port()  # the server is down
    inbox.mailbox.save(update_fields=["port"])
    for response in (api.patch(path, {"flagged": True}), api.delete(path)):
        assert response.status_code == 502
        assert "nothing changed" in response.json()["detail"]
    assert inbox.copies() == [("INBOX", False, False)]


def test_shared_mail_answers_409_and_unseen_mail_404(org, inbox):
    f.contact(org.rep, "carl@client.example")
    link_messages([inbox.message.pk])
    sharing_actions.set_sharing(None, org.rep, mode="public")
    path = f"/messages/{inbox.message.pk}"
    manager = ApiClient(org.manager)
    body = manager.get(path).json()
    assert (body["seen"], body["flagged"], body["folders"]) == (None, None, [])
    response = manager.patch(path, {"seen": True})
    assert response.status_code == 409
    assert "not in a mailbox of yours" in response.json()["detail"]
    assert manager.delete(path).status_code == 409
    outsider = ApiClient(org.outsider_manager)
    assert outsider.patch(path, {"seen": True}).status_code == 404
    assert outsider.delete(path).status_code == 404
    assert inbox.on_server() == [("INBOX", False, False)] == inbox.copies()


def test_a_change_made_with_another_client_shows_after_a_sync(org, inbox):
    inbox.dovecot.flag(inbox.login, "INBOX", inbox.uid, ["\\Flagged"])
    inbox.dovecot.move(inbox.login, "INBOX", inbox.uid, "Archive")
    sync(inbox.mailbox)
    body = ApiClient(org.rep).get(f"/messages/{inbox.message.pk}").json()
    assert (body["seen"], body["flagged"], folder_names(body)) == (False, True, ["Archive"])


def test_a_pop3_copy_is_flagged_in_crmail_but_never_moved_or_deleted(org, dovecot):
    login, password = dovecot.new_user()
    dovecot.deliver(login, b"From: carl@client.example\r\nSubject: Over POP3\r\n\r\nHi\r\n")
    mailbox = f.mailbox(dovecot, login, password, owner=org.rep, protocol="pop3")
    sync(mailbox)
    copy = mailbox.locations.get()
    api, path = ApiClient(org.rep), f"/messages/{copy.message_id}"
    assert api.patch(path, {"flagged": True}).json()["flagged"] is True
    for response in (api.delete(path), api.post(f"{path}/move", {"folder_id": copy.folder_id})):
        assert response.status_code == 409
        assert "read over POP3" in response.json()["detail"]
    assert mailbox.locations.count() == 1
    assert len(dovecot.messages(login)) == 1
