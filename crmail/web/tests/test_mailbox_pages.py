"""The mailbox pages: list, connect (password and OAuth), status, folders, edit, deactivate.

Connections are tested against the real Dovecot of the test harness; the job queue runs
jobs at once in tests, so connecting or "Sync now" returns after the sync.
"""

from __future__ import annotations

import re
import urllib.parse
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crmail.jobs import leases
from crmail.jobs.models import Lease
from crmail.mail.models import Message
from crmail.mailboxes import actions
from crmail.mailboxes.models import AuthMethod, Folder, Location, Mailbox, SyncState
from crmail.mailboxes.tests import test_oauth as oauth_harness
from crmail.people.models import Profile
from crmail.web.forms import MailboxConnectForm
from crmail.web.views.mailboxes import duration
from tests import factories as f

pytestmark = pytest.mark.django_db

# The local OAuth 2 authorization server and a Dovecot that asks it about tokens.
auth_server = oauth_harness.auth_server
oauth_dovecot = oauth_harness.oauth_dovecot


def mail(n: int) -> bytes:
    return (
        f"From: Client {n} <client{n}@example.com>\r\nTo: rep@crmail.test\r\n"
        f"Subject: Quote {n}\r\nMessage-ID: <pages{n}@example.com>\r\n"
        f"Date: Mon, 02 Nov 2026 10:{n:02d}:00 +0000\r\n\r\nHello {n}\r\n"
    ).encode()


def connect_data(server, login: str, password: str, **extra) -> dict[str, str]:
    data = {
        "preset": "custom",
        "protocol": "imap",
        "email": f"{login}@crmail.test",
        "login": login,
        "password": password,
        "host": "127.0.0.1",
        "port": str(server.imap_port),
        "security": "none",
        "smtp_security": "tls",
        "smtp_same_credentials": "on",
        "store_sent_on_server": "on",
    }
    data.update(extra)
    return data


def page(response) -> str:
    return response.content.decode()


@pytest.fixture
def synced(dovecot):
    """A rep with a mailbox of three messages, synced."""
    login, password = dovecot.new_user()
    for n in range(3):
        dovecot.deliver(login, mail(n))
    rep = f.user("rep@crmail.test", name="Rex Rep")
    mailbox = f.mailbox(dovecot, login, password, owner=rep)
    from crmail.mailboxes.tasks import run_sync

    run_sync(mailbox)
    mailbox.refresh_from_db()
    return mailbox


# -- the list ----------------------------------------------------------------------------


def test_the_list_shows_state_last_sync_and_counts(synced, client_for):
    html = page(client_for(synced.owner).get(reverse("web:mailboxes")))
    assert synced.email in html
    assert "Completed" in html and "Active" in html
    assert '<td data-label="Messages">3</td>' in html
    assert '<td data-label="Folders">1</td>' in html
    assert "Sync now" in html and "Connect a mailbox" in html


def test_without_mail_integration_the_list_says_why_and_connect_is_refused(client_for):
    rep = f.user()
    rep.profile = Profile.objects.create(name="No mail", mail_integration=False)
    rep.save()
    client = client_for(rep)
    html = page(client.get(reverse("web:mailboxes")))
    assert "Your profile does not include Mail Integration" in html
    assert "Connect a mailbox</a>" not in html
    response = client.get(reverse("web:mailbox_connect"))
    assert response.status_code == 403
    assert "Mail Integration" in page(response)
    assert client.post(reverse("web:mailbox_connect"), {"preset": "custom"}).status_code == 403
    assert not Mailbox.objects.exists()


def test_admins_see_every_mailbox_and_filter_by_user(synced, dovecot, client_for):
    admin = f.user(admin=True)
    other = f.user(name="Olga Other")
    login, password = dovecot.new_user()
    theirs = f.mailbox(dovecot, login, password, owner=other)
    client = client_for(admin)
    html = page(client.get(reverse("web:mailboxes")))
    assert synced.email in html and theirs.email in html and "Olga Other" in html
    html = page(client.get(reverse("web:mailboxes"), {"user": other.pk}))
    assert theirs.email in html and synced.email not in html
    assert f"?user={other.pk}" in html  # connect for that user
    # A rep's list holds only their own.
    html = page(client_for(synced.owner).get(reverse("web:mailboxes")))
    assert theirs.email not in html


# -- connecting --------------------------------------------------------------------------


def test_connecting_tests_saves_and_syncs(dovecot, client_for):
    login, password = dovecot.new_user()
    for n in range(2):
        dovecot.deliver(login, mail(n))
    rep = f.user()
    client = client_for(rep)
    assert "Test and connect" in page(client.get(reverse("web:mailbox_connect")))

    data = connect_data(
        dovecot, login, password, extra_from_addresses="Sales@crmail.test\nme@crmail.test"
    )
    response = client.post(reverse("web:mailbox_connect"), data)

    mailbox = Mailbox.objects.get(owner=rep)
    assert response.status_code == 302
    assert response["Location"].startswith(
        reverse("web:mailbox_detail", args=[mailbox.pk]) + "?since="
    )
    assert mailbox.is_active and mailbox.secret == password
    assert mailbox.extra_from_addresses == ["sales@crmail.test", "me@crmail.test"]
    assert mailbox.state == SyncState.COMPLETED
    html = page(client.get(response["Location"]))
    assert "is connected" in html and "Completed" in html
    assert 'class="messages-stored">2 ' in html


def test_a_wrong_password_is_shown_in_words_and_never_echoed(dovecot, client_for):
    login, _password = dovecot.new_user()
    client = client_for(f.user())
    data = connect_data(dovecot, login, "wrong-secret-123")
    response = client.post(reverse("web:mailbox_connect"), data)
    html = page(response)
    assert response.status_code == 200
    assert "Incoming server: The server refused the login name or password." in html
    assert "wrong-secret-123" not in html
    assert not Mailbox.objects.exists()


def test_bad_input_names_the_field(dovecot, client_for):
    client = client_for(f.user())
    data = connect_data(dovecot, "x", "y", port="imap", email="not an address")
    html = page(client.post(reverse("web:mailbox_connect"), data))
    assert '<a href="#id_port">Incoming port</a>: Enter a whole number.' in html
    assert '<a href="#id_email">Email address</a>: Enter a valid email address.' in html

    data = connect_data(dovecot, "x", "y", host="", extra_from_addresses="nope")
    html = page(client.post(reverse("web:mailbox_connect"), data))
    assert "Incoming server</a>: Give the incoming server&#x27;s name." in html
    assert "Other addresses to send from</a>: &#x27;nope&#x27; is not an address." in html
    assert not Mailbox.objects.exists()


def test_an_unreachable_outgoing_server_is_named(dovecot, client_for):
    login, password = dovecot.new_user()
    client = client_for(f.user())
    data = connect_data(
        dovecot, login, password, smtp_host="127.0.0.1", smtp_port="1", smtp_security="none"
    )
    html = page(client.post(reverse("web:mailbox_connect"), data))
    assert "Outgoing server: " in html
    assert not Mailbox.objects.exists()


def test_a_preset_fills_in_the_servers():
    form = MailboxConnectForm(
        {
            "preset": "outlook",
            "protocol": "imap",
            "email": "Pat@Contoso.example",
            "password": "app-pass",
            "host": "ignored.example",
            "port": "1",
            "security": "none",
            "smtp_security": "none",
            "smtp_same_credentials": "on",
        }
    )
    assert form.is_valid(), form.errors
    fields = form.mailbox_fields()
    assert (fields["host"], fields["port"], fields["security"]) == (
        "outlook.office365.com",
        993,
        "tls",
    )
    assert (fields["smtp_host"], fields["smtp_port"], fields["smtp_security"]) == (
        "smtp.office365.com",
        587,
        "starttls",
    )
    assert fields["provider"] == "outlook" and fields["login"] == "Pat@Contoso.example"
    assert fields["email"] == "pat@contoso.example"

    icloud_pop = MailboxConnectForm(
        {
            "preset": "icloud",
            "protocol": "pop3",
            "email": "a@icloud.com",
            "security": "tls",
            "smtp_security": "tls",
        }
    )
    assert not icloud_pop.is_valid()
    assert icloud_pop.errors["protocol"] == ["iCloud Mail does not offer POP3: choose IMAP."]


def test_choosing_a_preset_shows_its_servers_and_app_password_hint(client_for):
    client = client_for(f.user())
    html = page(client.get(reverse("web:mailbox_connect"), {"preset": "yahoo"}))
    assert "imap.mail.yahoo.com:993" in html
    assert "Yahoo Mail needs an app password when two-factor authentication is on" in html
    assert 'hx-get="/settings/mail/connect/"' in html


def test_a_preset_server_error_shows_at_the_top(client_for, monkeypatch):
    def refuse(mailbox):
        raise actions.Invalid([{"field": "port", "message": "Ensure this value is valid."}])

    monkeypatch.setattr(actions, "test_connection", refuse)
    data = {
        "preset": "fastmail",
        "protocol": "imap",
        "email": "me@fastmail.example",
        "password": "x",
        "security": "tls",
        "smtp_security": "tls",
    }
    html = page(client_for(f.user()).post(reverse("web:mailbox_connect"), data))
    assert "<li>Incoming port: Ensure this value is valid.</li>" in html


def test_posts_need_the_csrf_token(synced):
    client = Client(enforce_csrf_checks=True)
    client.force_login(synced.owner)
    for name in ("web:mailbox_sync", "web:mailbox_activate", "web:mailbox_deactivate"):
        assert (
            client.post(reverse(name, args=[synced.pk]), {"keep_mail": "keep"}).status_code == 403
        )
    assert client.post(reverse("web:mailbox_connect"), {}).status_code == 403
    synced.refresh_from_db()
    assert synced.is_active


# -- locks and other users' mailboxes ------------------------------------------------------


def test_a_locked_configuration_is_shown_and_refused(synced, client_for):
    admin = f.user(admin=True)
    actions.set_locked(admin, synced.owner, True)
    client = client_for(synced.owner)
    html = page(client.get(reverse("web:mailboxes")))
    assert "Locked by an administrator" in html and "Connect a mailbox</a>" not in html
    assert 'disabled title="Locked by an administrator">Deactivate' in html
    detail = page(client.get(reverse("web:mailbox_detail", args=[synced.pk])))
    assert "Locked by an administrator" in detail and "Edit settings" not in detail
    assert client.get(reverse("web:mailbox_connect")).status_code == 403
    response = client.post(
        reverse("web:mailbox_deactivate", args=[synced.pk]), {"keep_mail": "keep"}
    )
    assert response.status_code == 403 and "locked" in page(response)
    edit = client.post(reverse("web:mailbox_edit", args=[synced.pk]), {"email": "x@crmail.test"})
    assert edit.status_code == 403
    folder = synced.folders.get()
    url = reverse("web:mailbox_folder", args=[synced.pk, folder.pk])
    assert client.post(url, {"sync": "0"}).status_code == 403
    synced.refresh_from_db()
    folder.refresh_from_db()
    assert synced.is_active and folder.sync_enabled
    # The administrator still may.
    assert client_for(admin).post(url, {"sync": "0"}).status_code == 302


def test_another_users_mailbox_answers_404(synced, client_for):
    stranger = client_for(f.user())
    folder = synced.folders.get()
    gets = [
        "web:mailbox_detail",
        "web:mailbox_status",
        "web:mailbox_edit",
        "web:mailbox_deactivate",
    ]
    for name in gets:
        assert stranger.get(reverse(name, args=[synced.pk])).status_code == 404, name
    posts = [
        "web:mailbox_sync",
        "web:mailbox_activate",
        "web:mailbox_deactivate",
        "web:mailbox_reauth",
    ]
    for name in posts:
        assert (
            stranger.post(reverse(name, args=[synced.pk]), {"keep_mail": "discard"}).status_code
            == 404
        )
    url = reverse("web:mailbox_folder", args=[synced.pk, folder.pk])
    assert stranger.post(url, {"sync": "0"}).status_code == 404
    assert stranger.get(reverse("web:mailbox_detail", args=[999999])).status_code == 404
    synced.refresh_from_db()
    assert synced.is_active and Location.objects.filter(mailbox=synced).count() == 3


def test_a_folder_of_another_mailbox_answers_404(synced, dovecot, client_for):
    login, password = dovecot.new_user()
    other = f.mailbox(dovecot, login, password)
    folder = Folder.objects.create(mailbox=other, remote_id="INBOX", name="Inbox")
    url = reverse("web:mailbox_folder", args=[synced.pk, folder.pk])
    assert client_for(synced.owner).post(url, {"sync": "0"}).status_code == 404


# -- status, sync, folders -----------------------------------------------------------------


def test_the_status_polls_while_syncing_and_stops_when_completed(synced, client_for):
    client = client_for(synced.owner)
    assert leases.acquire(f"mailbox-sync:{synced.pk}", "worker-host:1", timedelta(minutes=5))
    Mailbox.objects.filter(pk=synced.pk).update(
        state=SyncState.SYNCING,
        sync_started_at=timezone.now() - timedelta(seconds=10),
        progress_total=400,
        progress_done=100,
        progress_bytes=5_000_000,
    )
    url = reverse("web:mailbox_status", args=[synced.pk])
    html = page(client.get(url, headers={"HX-Request": "true"}))
    assert 'hx-trigger="every 2s"' in html
    assert "Sync in progress" in html
    assert "<strong>100</strong> of 400 messages (25%)" in html
    assert "messages/s" in html and "left" in html  # rate and ETA

    Mailbox.objects.filter(pk=synced.pk).update(state=SyncState.COMPLETED)
    response = client.get(url, headers={"HX-Request": "true"})
    assert "every 2s" not in page(response) and "Completed" in page(response)
    assert response.headers["HX-Trigger"] == "sync-finished"


def test_a_sync_whose_worker_died_shows_interrupted_and_stops_polling(synced, client_for):
    client = client_for(synced.owner)
    Mailbox.objects.filter(pk=synced.pk).update(
        state=SyncState.SYNCING,
        sync_started_at=timezone.now() - timedelta(minutes=1),
        progress_total=300,
        progress_done=0,
    )
    assert leases.acquire(f"mailbox-sync:{synced.pk}", "worker-host:1", timedelta(minutes=5))
    url = reverse("web:mailbox_status", args=[synced.pk])
    running = page(client.get(url, headers={"HX-Request": "true"}))
    assert "Sync in progress" in running and "every 2s" in running

    Lease.objects.filter(name=f"mailbox-sync:{synced.pk}").update(
        expires_at=timezone.now() - timedelta(seconds=1)  # the worker never renewed it
    )
    html = page(client.get(reverse("web:mailbox_detail", args=[synced.pk])))
    assert "Interrupted" in html and "Sync in progress" not in html
    assert "the next sync carries on" in html
    assert "every 2s" not in html and "<progress" not in html
    listed = page(client.get(reverse("web:mailboxes")))
    assert "Interrupted" in listed and "Sync in progress" not in listed


def test_an_error_is_shown_in_words(synced, client_for):
    Mailbox.objects.filter(pk=synced.pk).update(
        state=SyncState.ERROR, last_error="The server refused the login name or password."
    )
    html = page(client_for(synced.owner).get(reverse("web:mailbox_detail", args=[synced.pk])))
    assert "The last sync failed:</strong> The server refused the login name or password." in html


def test_sync_now_runs_a_sync(synced, dovecot, client_for):
    dovecot.deliver(synced.login, mail(7))
    response = client_for(synced.owner).post(reverse("web:mailbox_sync", args=[synced.pk]))
    assert response.status_code == 302
    assert Location.objects.filter(mailbox=synced).count() == 4


def test_folder_roles_and_sync_switch(synced, client_for):
    client = client_for(synced.owner)
    inbox = synced.folders.get()
    archive = Folder.objects.create(mailbox=synced, remote_id="Old", name="Old")
    url = reverse("web:mailbox_folder", args=[synced.pk, archive.pk])

    html = page(client.post(url, {"role": "archive"}, headers={"HX-Request": "true"}))
    assert 'id="folders"' in html and "Old: role saved." in html
    assert '<option value="archive" selected>' in html
    archive.refresh_from_db()
    assert archive.role == "archive" and not archive.role_from_server

    html = page(client.post(url, {"role": "spam"}, headers={"HX-Request": "true"}))
    assert "Role: Choose one of: inbox, sent, drafts, trash, junk, archive, or none." in html

    html = page(client.post(url, {"sync": "0"}, headers={"HX-Request": "true"}))
    assert "Old: no longer syncs." in html
    archive.refresh_from_db()
    assert not archive.sync_enabled
    detail = page(client.get(reverse("web:mailbox_detail", args=[synced.pk])))
    assert "from the server" in detail  # the Inbox's role came from the server
    assert inbox.role == "inbox"


# -- edit ----------------------------------------------------------------------------------


def test_editing_keeps_the_stored_password_when_left_empty(synced, client_for):
    client = client_for(synced.owner)
    html = page(client.get(reverse("web:mailbox_edit", args=[synced.pk])))
    assert "Leave empty to keep the stored password." in html
    assert synced.secret not in html
    data = {
        "email": synced.email,
        "login": synced.login,
        "password": "",
        "host": "127.0.0.1",
        "port": str(synced.port),
        "security": "none",
        "smtp_security": "tls",
        "smtp_same_credentials": "on",
        "import_since": "2026-01-01",
    }
    response = client.post(reverse("web:mailbox_edit", args=[synced.pk]), data)
    assert response.status_code == 302
    saved = Mailbox.objects.get(pk=synced.pk)
    assert saved.secret == synced.secret and str(saved.import_since) == "2026-01-01"

    data["password"] = "not-it"
    html = page(client.post(reverse("web:mailbox_edit", args=[synced.pk]), data))
    assert "Incoming server: The server refused the login name or password." in html
    assert "not-it" not in html
    assert Mailbox.objects.get(pk=synced.pk).secret == synced.secret


def test_a_relay_without_login_and_the_name_on_sent_mail_are_chosen_on_the_edit_page(
    synced, client_for, smtp_sink
):
    client = client_for(synced.owner)
    html = page(client.get(reverse("web:mailbox_edit", args=[synced.pk])))
    assert "The outgoing server needs no login" in html and "Name on sent mail" in html
    data = {
        "email": synced.email,
        "login": synced.login,
        "password": "",
        "host": "127.0.0.1",
        "port": str(synced.port),
        "security": "none",
        "smtp_host": "127.0.0.1",
        "smtp_port": str(smtp_sink.port),
        "smtp_security": "none",
        "smtp_same_credentials": "on",
        "smtp_no_login": "on",
        "display_name": "Acme Sales",
        "store_sent_on_server": "",
    }
    response = client.post(reverse("web:mailbox_edit", args=[synced.pk]), data)
    assert response.status_code == 302, page(response)
    saved = Mailbox.objects.get(pk=synced.pk)
    assert not saved.smtp_same_credentials and saved.smtp_login == ""
    html = page(client.get(reverse("web:mailbox_edit", args=[synced.pk])))
    assert re.search(r'<input type="checkbox" name="smtp_no_login"[^>]* checked>', html)
    sent = client.post(
        reverse("web:compose"),
        {"sender": saved.email, "to": "grace@client.example", "subject": "Hi", "body": "x"},
    )
    assert sent.status_code == 302
    [got] = smtp_sink.wait_for(1)
    assert got.auth_user is None
    assert f"From: Acme Sales <{saved.email}>".encode() in got.data


# -- activate and deactivate ---------------------------------------------------------------


def test_deactivate_asks_then_keeps_the_mail(synced, client_for):
    client = client_for(synced.owner)
    url = reverse("web:mailbox_deactivate", args=[synced.pk])
    html = page(client.get(url))
    assert (
        "Keep the synced mail" in html
        and "Remove the synced mail" in html
        and "(3 messages)" in html
    )
    html = page(client.post(url, {}))
    assert "Choose whether to keep the synced mail or to remove it." in html
    synced.refresh_from_db()
    assert synced.is_active

    response = client.post(url, {"keep_mail": "keep"})
    assert response.status_code == 302
    synced.refresh_from_db()
    assert not synced.is_active and synced.state == SyncState.DISABLED
    assert Location.objects.filter(mailbox=synced).count() == 3
    html = page(client.get(reverse("web:mailboxes")))
    assert "its synced mail stays" in html and "Make active" in html

    client.post(reverse("web:mailbox_activate", args=[synced.pk]))
    synced.refresh_from_db()
    assert synced.is_active and synced.state == SyncState.COMPLETED


def test_deactivate_can_discard_the_mail(synced, client_for):
    client = client_for(synced.owner)
    client.post(reverse("web:mailbox_deactivate", args=[synced.pk]), {"keep_mail": "discard"})
    assert not Location.objects.filter(mailbox=synced).exists()
    assert not Message.objects.exists()
    assert "3 synced messages removed" in page(client.get(reverse("web:mailboxes")))


def test_deactivating_asks_about_the_labels_and_can_take_them_off_the_server(
    dovecot, client_for, django_capture_on_commit_callbacks
):
    from crmail.mailboxes.labels.categories import this_month
    from crmail.mailboxes.tasks import run_sync

    login, password = dovecot.new_user()
    rep = f.user("rep@crmail.test", name="Rex Rep")
    _, last = this_month()
    f.deal(rep, contact=f.contact(rep, "cleo@acme.test"), closing_date=last)
    dovecot.deliver(
        login,
        b"From: cleo@acme.test\r\nTo: rep@crmail.test\r\nSubject: Contract\r\n"
        b"Message-ID: <cleo1@acme.test>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\nHi\r\n",
    )
    mailbox = f.mailbox(dovecot, login, password, owner=rep)
    run_sync(mailbox)
    with django_capture_on_commit_callbacks(execute=True):
        actions.update_mailbox(rep, mailbox, {"deal_labels": True})
    assert "Deals Closing This Month" in dovecot.list_mailboxes(login)
    assert dovecot.messages(login, "INBOX") == []

    client = client_for(rep)
    url = reverse("web:mailbox_deactivate", args=[mailbox.pk])
    html = page(client.post(url, {"keep_mail": "keep"}))
    assert "Choose whether to keep the three labels on the server or to remove them." in html
    mailbox.refresh_from_db()
    assert mailbox.is_active

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"keep_mail": "keep", "labels": "remove"})
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert not mailbox.is_active and not mailbox.deal_labels
    assert dovecot.list_mailboxes(login) == ["INBOX"]
    assert len(dovecot.messages(login, "INBOX")) == 1
    assert "Its labels are being removed from the server" in page(
        client.get(reverse("web:mailboxes"))
    )


def test_making_another_mailbox_active_stops_the_first(synced, dovecot, client_for):
    login, password = dovecot.new_user()
    second = f.mailbox(dovecot, login, password, owner=synced.owner, is_active=False)
    client_for(synced.owner).post(reverse("web:mailbox_activate", args=[second.pk]))
    synced.refresh_from_db()
    second.refresh_from_db()
    assert second.is_active and not synced.is_active


# -- the administrators' lock --------------------------------------------------------------


def test_admins_lock_and_unlock_from_the_users_page(synced, client_for):
    admin = f.user(admin=True)
    client = client_for(admin)
    url = reverse("web:user_mail_lock", args=[synced.owner.pk])
    assert "Lock the mail configuration of Rex Rep" in page(client.get(reverse("web:users")))
    client.post(url, {"locked": "1"})
    synced.refresh_from_db()
    assert synced.locked
    html = page(client.get(reverse("web:users")))
    assert "Unlock the mail configuration of Rex Rep" in html and "is locked" in html
    client.post(url, {"locked": "0"})
    synced.refresh_from_db()
    assert not synced.locked
    # Not for others.
    assert client_for(synced.owner).post(url, {"locked": "1"}).status_code == 403
    synced.refresh_from_db()
    assert not synced.locked


# -- OAuth ---------------------------------------------------------------------------------


def follow_sign_in(client: Client, response) -> object:
    """Follow HX-Redirect to the authorization server, then its redirect back to crmail."""
    assert response.status_code == 204, page(response)
    answer = requests.get(response["HX-Redirect"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urllib.parse.urlsplit(answer.headers["Location"])
    assert back.path == reverse("web:mailbox_oauth_callback")
    return client.get(back.path, dict(urllib.parse.parse_qsl(back.query)))


def test_sign_in_with_oauth_connects_and_syncs(auth_server, oauth_dovecot, client_for):
    login, _ = oauth_dovecot.new_user()
    for n in range(2):
        oauth_dovecot.deliver(login, mail(n))
    auth_server.user = login
    rep = f.user()
    client = client_for(rep)
    html = page(client.get(reverse("web:mailbox_connect")))
    assert "Sign in with Test Identity" in html

    data = connect_data(oauth_dovecot, login, "", oauth="testidp")
    start = client.post(reverse("web:mailbox_oauth_start"), data, headers={"HX-Request": "true"})
    assert "login_hint=" in start["HX-Redirect"]
    response = follow_sign_in(client, start)

    mailbox = Mailbox.objects.get(owner=rep)
    assert response.status_code == 302, page(response)
    assert mailbox.auth_method == AuthMethod.OAUTH2 and mailbox.provider == "testidp"
    assert mailbox.secret in auth_server.refresh
    assert mailbox.state == SyncState.COMPLETED
    assert Location.objects.filter(mailbox=mailbox).count() == 2

    # Without htmx the browser gets a page with a link (no redirect off a form post).
    plain = client.post(reverse("web:mailbox_oauth_start"), data)
    assert plain.status_code == 200 and "Continue to Test Identity" in page(plain)


def test_oauth_errors_are_shown_in_words(auth_server, client_for):
    client = client_for(f.user())
    response = client.get(reverse("web:mailbox_oauth_callback"), {"state": "nope", "code": "x"})
    assert response.status_code == 400
    assert "This sign-in has expired or was already used" in page(response)

    data = connect_data(SimpleNamespace(imap_port=1), "alice", "", oauth="testidp")
    start = client.post(reverse("web:mailbox_oauth_start"), data, headers={"HX-Request": "true"})
    url = urllib.parse.urlsplit(start["HX-Redirect"])
    state = dict(urllib.parse.parse_qsl(url.query))["state"]
    denied = client.get(
        reverse("web:mailbox_oauth_callback"), {"state": state, "error": "access_denied"}
    )
    assert denied.status_code == 400
    assert "Access was not granted at Test Identity" in page(denied)

    html = page(
        client.post(
            reverse("web:mailbox_oauth_start"),
            {**data, "oauth": "elsewhere"},
            headers={"HX-Request": "true"},
        )
    )
    assert "Signing in with this provider is not set up on this server." in html
    assert not Mailbox.objects.exists()


def test_a_mailbox_that_needs_reauth_signs_in_again(auth_server, oauth_dovecot, client_for):
    login, _ = oauth_dovecot.new_user()
    oauth_dovecot.deliver(login, mail(1))
    auth_server.user = login
    rep = f.user()
    client = client_for(rep)
    data = connect_data(oauth_dovecot, login, "", oauth="testidp")
    start = client.post(reverse("web:mailbox_oauth_start"), data, headers={"HX-Request": "true"})
    follow_sign_in(client, start)
    mailbox = Mailbox.objects.get(owner=rep)
    auth_server.revoke(mailbox.secret)
    Mailbox.objects.filter(pk=mailbox.pk).update(
        state=SyncState.NEEDS_REAUTH, last_error="Access to this mailbox was withdrawn."
    )
    html = page(client.get(reverse("web:mailbox_detail", args=[mailbox.pk])))
    assert "Sign in again" in html and "Access to this mailbox was withdrawn." in html

    start = client.post(
        reverse("web:mailbox_reauth", args=[mailbox.pk]), headers={"HX-Request": "true"}
    )
    response = follow_sign_in(client, start)
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.state == SyncState.COMPLETED and mailbox.last_error == ""
    assert mailbox.secret in auth_server.refresh
    assert "Signed in again" in page(client.get(response["Location"]))


# -- formatting ----------------------------------------------------------------------------


def test_durations_read_like_words():
    assert duration(None) == ""
    assert duration(12) == "less than a minute"
    assert duration(600) == "about 10 min"
    assert duration(3 * 3600) == "about 3.0 h"
    assert duration(4 * 86400) == "about 4.0 days"


def test_every_page_tells_the_owner_when_their_mailbox_needs_them():
    owner, colleague = f.user(), f.user()
    mailbox = Mailbox.objects.create(
        owner=owner,
        email="owner@crmail.test",
        host="imap.example.com",
        state=SyncState.NEEDS_REAUTH,
        last_error="Access was withdrawn <script>alert(1)</script>",
    )
    client = Client()
    client.force_login(owner)
    page = client.get(reverse("web:record_list", args=["contacts"])).content.decode()
    assert "owner@crmail.test needs you to sign in again" in page
    assert reverse("web:mailbox_detail", args=[mailbox.pk]) in page
    Mailbox.objects.filter(pk=mailbox.pk).update(state=SyncState.ERROR)
    page = client.get(reverse("web:home")).content.decode()
    assert "cannot sync: Access was withdrawn &lt;script&gt;" in page
    other = Client()
    other.force_login(colleague)
    assert "owner@crmail.test" not in other.get(reverse("web:home")).content.decode()
    Mailbox.objects.filter(pk=mailbox.pk).update(state=SyncState.COMPLETED)
    assert "cannot sync" not in client.get(reverse("web:home")).content.decode()


def _alert_reads(client: Client, url: str, headers: dict[str, str] | None = None) -> int:
    """How many statements asking for a mailbox that needs its owner answering ``url``."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, headers=headers or {}).status_code == 200
    return sum(SyncState.NEEDS_REAUTH.value in q["sql"] for q in queries.captured_queries)


def test_only_whole_pages_ask_whether_a_mailbox_needs_its_owner():
    """The fragments htmx asks for, such as the sync status polled every 2 s while a sync
    runs, have no top of page to show the alert on: they do not look for one."""
    owner = f.user()
    mailbox = Mailbox.objects.create(owner=owner, email=owner.email, host="imap.example.com")
    client = Client()
    client.force_login(owner)
    assert _alert_reads(client, reverse("web:mailbox_detail", args=[mailbox.pk])) == 1
    status = reverse("web:mailbox_status", args=[mailbox.pk])
    assert _alert_reads(client, status, {"HX-Request": "true"}) == 0


def test_the_status_follows_a_queued_sync_until_it_has_run():
    """With a real job worker the sync starts after the page loads: the page must wait."""
    owner = f.user()
    mailbox = Mailbox.objects.create(owner=owner, email=owner.email, host="imap.example.com")
    client = Client()
    client.force_login(owner)
    detail = reverse("web:mailbox_detail", args=[mailbox.pk])
    status = reverse("web:mailbox_status", args=[mailbox.pk])
    html = client.get(detail).content.decode()
    assert 'hx-trigger="every 2s"' in html and "queued" in html  # the first sync
    asked = timezone.now()
    since = f"?since={asked.timestamp():.3f}"
    Mailbox.objects.filter(pk=mailbox.pk).update(
        state=SyncState.COMPLETED,
        last_sync_at=asked - timedelta(hours=1),
        sync_started_at=asked - timedelta(hours=1),
    )
    html = client.get(detail + since).content.decode()
    assert 'hx-trigger="every 2s"' in html and since in html  # "Sync now": not started yet
    assert 'hx-trigger="every 2s"' not in client.get(detail).content.decode()
    Mailbox.objects.filter(pk=mailbox.pk).update(
        state=SyncState.COMPLETED, sync_started_at=asked + timedelta(seconds=1)
    )
    polled = client.get(status + since, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' not in polled.content.decode()
    assert polled["HX-Trigger"] == "sync-finished"
    long_ago = f"?since={(asked - timedelta(minutes=11)).timestamp():.3f}"
    Mailbox.objects.filter(pk=mailbox.pk).update(sync_started_at=asked - timedelta(hours=1))
    html = client.get(detail + long_ago).content.decode()
    assert "is crmail&#x27;s job worker running" in html or "job worker running" in html
    assert 'hx-trigger="every 2s"' not in html
