"""Mailboxes in a real browser: connect a Dovecot mailbox, watch it sync, change, deactivate.

In tests the job queue runs jobs at once, so "Test and connect" returns after the first
sync; the "Sync in progress" display and its polling are driven by setting the mailbox's
progress (and holding its sync lease, as a running sync does) from the test while the
page is open.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crmail.jobs import leases
from crmail.mailboxes.models import Mailbox, SyncState
from crmail.mailboxes.tests import test_oauth as oauth_harness
from tests import factories as f

pytestmark = pytest.mark.browser

# The local OAuth 2 authorization server and a Dovecot that asks it about tokens.
auth_server = oauth_harness.auth_server
oauth_dovecot = oauth_harness.oauth_dovecot


def mail(n: int) -> bytes:
    return (
        f"From: Client {n} <client{n}@example.com>\r\nTo: rep@crmail.test\r\n"
        f"Subject: Quote {n}\r\nMessage-ID: <browser{n}@example.com>\r\n"
        f"Date: Mon, 02 Nov 2026 10:{n:02d}:00 +0000\r\n\r\nHello {n}\r\n"
    ).encode()


def test_connect_a_mailbox_watch_it_sync_then_deactivate(app, dovecot):
    login, password = dovecot.new_user()
    for n in range(3):
        dovecot.deliver(login, mail(n))
    f.user("rep@crmail.test", name="Rex Rep")
    page = app.page
    app.sign_in("rep@crmail.test", f.PASSWORD)

    app.my_menu().get_by_role("link", name="Mailboxes").click()
    expect(page.get_by_role("heading", name="My mailboxes")).to_be_visible()
    expect(page.locator(".empty")).to_contain_text("No mailbox is connected yet")
    app.shot("mailboxes-empty")
    page.get_by_role("link", name="Connect a mailbox").click()

    # A preset hides the server fields and says when an app password is needed.
    expect(page.get_by_label("Incoming server")).to_be_visible()
    page.get_by_label("Provider").select_option("gmail")
    expect(page.locator("#provider-info")).to_contain_text("Gmail needs an app password")
    expect(page.locator("#provider-info")).to_contain_text("imap.gmail.com:993")
    expect(page.get_by_label("Incoming server")).to_be_hidden()
    app.shot("mailbox-connect-gmail")
    page.get_by_label("Provider").select_option("custom")
    expect(page.get_by_label("Incoming server")).to_be_visible()

    # Separate outgoing credentials show only when asked for.
    expect(page.get_by_label("Outgoing login")).to_be_hidden()
    page.get_by_label("Use the same credentials for outgoing mail").uncheck()
    expect(page.get_by_label("Outgoing login")).to_be_visible()
    page.get_by_label("Use the same credentials for outgoing mail").check()

    page.get_by_label("Email address").fill(f"{login}@crmail.test")
    page.get_by_label("Login", exact=True).fill(login)
    page.get_by_label("Password or app password").fill("not-the-password")
    page.get_by_label("Incoming server").fill("127.0.0.1")
    page.get_by_label("Incoming port").fill(str(dovecot.imap_port))
    page.get_by_label("Incoming security").select_option("none")
    page.get_by_label("Folders to sync").fill("INBOX")
    page.get_by_role("button", name="Test and connect").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Incoming server: The server refused the login name or password")
    expect(page.get_by_label("Password or app password")).to_have_value("")  # never echoed
    expect(page.get_by_label("Incoming server")).to_have_value("127.0.0.1")
    app.shot("mailbox-connect-wrong-password")

    page.get_by_label("Password or app password").fill(password)
    page.get_by_role("button", name="Test and connect").click()
    expect(page).to_have_url(re.compile(r"/settings/mail/\d+/\?since=[0-9.]+$"))
    expect(page.get_by_role("status")).to_contain_text("is connected")
    status = page.locator("#sync-status")
    expect(status).to_contain_text("Completed")
    expect(status.locator(".messages-stored")).to_contain_text("3")
    expect(page.locator("#folders")).to_contain_text("Inbox")
    app.shot("mailbox-detail-completed")

    # A folder stops syncing without a page load.
    folders = page.locator("#folders")
    folders.get_by_role("button", name="Stop syncing Inbox").click()
    expect(folders.locator("td[data-label=Sync]")).to_contain_text("Off")
    expect(folders.get_by_role("status")).to_contain_text("no longer syncs")

    page.get_by_role("link", name="Edit settings").click()
    expect(page.get_by_label("Password or app password")).to_have_value("")
    expect(page.get_by_text("Leave empty to keep the stored password.").first).to_be_visible()
    app.shot("mailbox-edit")
    page.get_by_role("link", name="Cancel").click()

    # While a sync runs, the status polls every two seconds until it completes.
    mailbox = Mailbox.objects.get(login=login)
    assert leases.acquire(f"mailbox-sync:{mailbox.pk}", "worker-host:1", timedelta(minutes=5))
    Mailbox.objects.filter(pk=mailbox.pk).update(
        state=SyncState.SYNCING,
        sync_started_at=timezone.now() - timedelta(seconds=20),
        progress_total=1200,
        progress_done=450,
        progress_bytes=37_000_000,
    )
    page.reload()
    expect(status).to_contain_text("Sync in progress")
    expect(status).to_contain_text("450 of 1200 messages (38%)")
    expect(status).to_contain_text("left")
    app.shot("mailbox-detail-syncing")
    Mailbox.objects.filter(pk=mailbox.pk).update(
        state=SyncState.COMPLETED, last_sync_at=timezone.now()
    )
    expect(status).to_contain_text("Completed", timeout=8_000)
    expect(status).not_to_contain_text("Sync in progress")
    expect(page.locator("#folders")).to_contain_text("Turn on")  # reloaded, as it was

    page.get_by_role("link", name="Mailboxes", exact=True).first.click()
    row = page.locator("table.mailboxes tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Completed")
    expect(row.locator("td[data-label=Messages]")).to_have_text("3")
    app.shot("mailboxes-list")

    row.get_by_role("link", name="Deactivate").click()
    expect(page.get_by_role("heading", name=re.compile("Deactivate"))).to_be_visible()
    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose whether to keep the synced mail")
    page.get_by_role("radio", name=re.compile("^Keep the synced mail")).check()
    app.shot("mailbox-deactivate")
    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("status")).to_contain_text("was deactivated")
    expect(row).to_contain_text("Deactivated")
    expect(row.get_by_role("button", name="Make active")).to_be_visible()
    assert page.js_errors == []


def test_an_admin_locks_a_users_mail_configuration(app, dovecot):
    admin = f.user("admin@crmail.test", name="Ada Admin", role_name="CEO", admin=True)
    rep = f.user("rep@crmail.test", name="Rex Rep")
    login, password = dovecot.new_user()
    f.mailbox(dovecot, login, password, owner=rep)
    assert admin.is_admin
    page = app.page
    app.sign_in("admin@crmail.test", f.PASSWORD)
    app.go("/settings/users/")
    page.get_by_role("button", name="Lock the mail configuration of Rex Rep").click()
    expect(page.get_by_role("status")).to_contain_text("is locked")
    rex = page.locator("tr", has_text="rep@crmail.test")
    expect(rex.locator("td.mail-lock")).to_contain_text("Locked")
    expect(rex.get_by_role("button", name=re.compile("^Unlock"))).to_be_visible()
    app.shot("users-mail-lock")
    page.get_by_role("link", name="1 mailbox").click()
    expect(page.locator("table.mailboxes")).to_contain_text("Rex Rep")
    expect(page.locator("table.mailboxes")).to_contain_text("Locked")
    app.shot("mailboxes-admin")

    page.context.clear_cookies()
    app.sign_in("rep@crmail.test", f.PASSWORD)
    app.go("/settings/mail/")
    expect(page.get_by_role("note")).to_contain_text("Locked by an administrator")
    expect(page.get_by_role("link", name="Connect a mailbox")).to_have_count(0)
    expect(page.get_by_role("button", name="Deactivate")).to_be_disabled()
    app.shot("mailboxes-locked")
    assert page.js_errors == []


def test_sign_in_with_oauth_from_the_connect_page(app, auth_server, oauth_dovecot):
    login, _ = oauth_dovecot.new_user()
    for n in range(2):
        oauth_dovecot.deliver(login, mail(n))
    auth_server.user = login
    f.user("rep@crmail.test", name="Rex Rep")
    page = app.page
    app.sign_in("rep@crmail.test", f.PASSWORD)
    app.go("/settings/mail/connect/")
    page.get_by_label("Email address").fill(f"{login}@crmail.test")
    page.get_by_label("Login", exact=True).fill(login)
    page.get_by_label("Incoming server").fill("127.0.0.1")
    page.get_by_label("Incoming port").fill(str(oauth_dovecot.imap_port))
    page.get_by_label("Incoming security").select_option("none")
    app.shot("mailbox-connect-oauth")
    page.get_by_role("button", name="Sign in with Test Identity").click()

    # To the provider and back, then the first sync.
    expect(page).to_have_url(re.compile(r"/settings/mail/\d+/\?since=[0-9.]+$"))
    expect(page.locator("#sync-status")).to_contain_text("Completed")
    expect(page.locator("#sync-status .messages-stored")).to_contain_text("2")
    expect(page.locator("main")).to_contain_text("OAuth 2")
    assert page.js_errors == []


def test_the_owner_is_told_on_every_page_to_sign_in_again(app):
    owner = f.user("rep@crmail.test", name="Rex Rep")
    Mailbox.objects.create(
        owner=owner, email="rep@crmail.test", host="imap.example.com", state=SyncState.NEEDS_REAUTH
    )
    page = app.page
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page.goto(app.url + "/contacts/")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("rep@crmail.test needs you to sign in again")
    page.screenshot(path="/tmp/crmail-shots/mailbox-alert.png")
    alert.get_by_role("link", name="Open the mailbox").click()
    expect(page.get_by_role("heading", name="rep@crmail.test")).to_be_visible()
    # The mailbox page says it in its own words.
    expect(page.locator("main > p.mailbox-alert")).to_have_count(0)
