"""A first run as a new user lives it: the sharing choice when connecting a mailbox."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crmail.sharing.models import SharingSetting
from tests import factories as f

pytestmark = pytest.mark.browser


def test_the_default_sharing_is_preselected_and_the_choice_is_kept(app, dovecot):
    login, password = dovecot.new_user()
    f.user("admin@crmail.test", name="Ada Admin", role_name="CEO", admin=True)
    page = app.page
    app.sign_in("admin@crmail.test", f.PASSWORD)
    app.go("/settings/sharing/")
    default = page.locator("form.sharing-default")
    expect(default.get_by_role("radio", name=re.compile("^Private"))).to_be_checked()
    default.get_by_role("radio", name=re.compile("^Public")).check()
    default.get_by_role("button", name="Save the default").click()
    expect(page.get_by_role("status")).to_contain_text("now starts public")
    app.shot("sharing-default")
    app.sign_out()

    rep = f.user("rep@crmail.test", name="Rex Rep", sharing=None)
    assert SharingSetting.objects.get(user=rep).mode == "public"
    app.sign_in("rep@crmail.test", f.PASSWORD)
    app.go("/settings/mail/connect/")
    choice = page.get_by_role("group", name="Who sees the mail synced from this mailbox")
    expect(choice.get_by_role("radio", name=re.compile("^Public"))).to_be_checked()
    expect(choice).to_contain_text("Only its owner sees synced mail")
    app.shot("mailbox-connect-sharing")
    choice.get_by_role("radio", name=re.compile("^Private")).check()
    page.get_by_label("Email address").fill(f"{login}@crmail.test")
    page.get_by_label("Login", exact=True).fill(login)
    page.get_by_label("Password or app password").fill(password)
    page.get_by_label("Incoming server").fill("127.0.0.1")
    page.get_by_label("Incoming port").fill(str(dovecot.imap_port))
    page.get_by_label("Incoming security").select_option("none")
    page.get_by_role("button", name="Test and connect").click()
    expect(page).to_have_url(re.compile(r"/settings/mail/\d+/"))
    assert SharingSetting.objects.get(user=rep).mode == "private"
    app.go("/settings/mail/sharing/")
    expect(page.get_by_role("radio", name=re.compile("^Private"))).to_be_checked()
    assert not page.js_errors


def test_the_account_page_changes_name_signature_password_and_tokens(app):
    f.user("rep@crmail.test", name="Rex Rep")
    page = app.page
    app.sign_in("rep@crmail.test", f.PASSWORD)
    app.my_menu().get_by_role("link", name="Your account").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("Rex Seller")
    page.get_by_label("Email signature").fill("Rex Seller\nAccount executive, Acme")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Your name and signature were saved.")
    expect(page.locator("summary.who")).to_have_text("Rex Seller")

    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill("violet tractor 1987 harbour")
    page.get_by_label("New password again").fill("violet tractor 1987 harbour")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("The current password is not right.")
    page.get_by_label("Current password").fill(f.PASSWORD)
    page.get_by_label("New password", exact=True).fill("violet tractor 1987 harbour")
    page.get_by_label("New password again").fill("violet tractor 1987 harbour")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password was changed.")

    page.get_by_label("Token name").fill("Reporting script")
    page.get_by_role("button", name="Create a token").click()
    secret = page.get_by_label("The new token").inner_text()
    assert secret.startswith("crm_")
    tokens = page.locator("table.tokens")
    expect(tokens).to_contain_text("Reporting script")
    expect(tokens).to_contain_text(secret[:10] + "…")
    expect(tokens).to_contain_text("never")
    app.shot("account-new-token")
    app.go("/account/")
    expect(page.get_by_label("The new token")).to_have_count(0)
    assert secret not in page.content()
    page.get_by_role("button", name="Revoke the token Reporting script").click()
    expect(page.get_by_role("status")).to_contain_text("is revoked: it no longer works")
    expect(page.locator("table.tokens")).to_contain_text("Revoked")
    app.shot("account-token-revoked")
    assert not page.js_errors


def test_an_administrator_edits_profiles_in_the_ui(app):
    from crmail.people.models import Profile

    f.user("admin@crmail.test", name="Ada Admin", role_name="CEO", admin=True)
    page = app.page
    app.sign_in("admin@crmail.test", f.PASSWORD)
    app.admin_menu().get_by_role("link", name="Profiles").click()
    expect(page.get_by_role("heading", name="Profiles")).to_be_visible()
    page.get_by_role("link", name="New profile").click()
    page.get_by_label("Name", exact=True).fill("Standard")
    page.get_by_label("Delete deals").uncheck()
    page.get_by_label("Delete leads").uncheck()
    page.get_by_role("button", name="Add profile").click()
    expect(page.get_by_role("alert")).to_contain_text("A profile named 'Standard' already exists.")
    page.get_by_label("Name", exact=True).fill("Junior rep")
    page.get_by_label("Description").fill("Cannot delete")
    page.get_by_label("Mail Integration").check()
    app.shot("profile-new")
    page.get_by_role("button", name="Add profile").click()
    expect(page.get_by_role("status")).to_contain_text("The profile Junior rep was added.")
    row = page.locator("tr", has_text="Junior rep")
    expect(row).to_contain_text("Deals: view, create, edit")
    app.shot("profiles")
    junior = Profile.objects.get(name="Junior rep")
    assert not junior.allows("deals", "delete") and junior.allows("deals", "edit")
    assert junior.mail_integration

    page.get_by_role("link", name="Edit the profile Junior rep").click()
    expect(page.get_by_label("Delete deals")).not_to_be_checked()
    page.get_by_label("Edit accounts").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("The profile Junior rep was saved.")
    junior.refresh_from_db()
    assert not junior.allows("accounts", "edit") and junior.allows("accounts", "view")
    assert not page.js_errors


def test_a_missing_sent_folder_is_created_from_the_mailbox_page(app, dovecot):
    from crmail.mailboxes.tasks import run_sync

    login, password = dovecot.new_user()
    rep = f.user("rep@crmail.test", name="Rex Rep")
    mailbox = f.mailbox(dovecot, login, password, owner=rep)
    run_sync(mailbox)
    page = app.page
    app.sign_in("rep@crmail.test", f.PASSWORD)
    app.go(f"/settings/mail/{mailbox.pk}/")
    expect(page.locator(".no-sent")).to_contain_text("This server has no Sent folder.")
    app.shot("mailbox-no-sent-folder")
    page.get_by_role("button", name="Create a Sent folder").click()
    expect(page.get_by_role("status").first).to_contain_text("The folder Sent was created")
    expect(page.locator(".no-sent")).to_have_count(0)
    expect(page.get_by_label("Role of Sent")).to_have_value("sent")
    app.shot("mailbox-sent-folder-created")
    assert not page.js_errors
