"""Email sharing in a real browser: an administrator edits and locks a user's setting, and
the user finds it read-only; a user in custom mode shares a contact from its page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crmail.people.models import ModuleDefault, User
from crmail.sharing import actions
from crmail.sharing.models import SharedRecord
from crmail.sharing.queries import summary
from crmail.sharing.tests.build import message
from crmail.sharing.visibility import visible_messages
from tests import factories as f

pytestmark = pytest.mark.browser


def test_admin_makes_a_user_share_with_one_colleague_and_locks_it(app):
    f.user("admin@crmail.test", name="Ada Admin", role_name="CEO", admin=True)
    f.user("rep@crmail.test", name="Rex Rep")
    f.user("peer@crmail.test", name="Pia Peer")
    f.user("gone@crmail.test", name="Gus Gone", is_active=False)
    page = app.page
    app.sign_in("admin@crmail.test", f.PASSWORD)

    admin_nav = app.admin_menu()
    admin_nav.get_by_role("link", name="Email sharing").click()
    expect(page.get_by_role("heading", name="Email sharing")).to_be_visible()
    rows = page.locator("table.sharing tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.last).to_contain_text("Gus Gone")
    expect(rows.last).to_contain_text("Deactivated")
    rex = page.locator("tr", has_text="Rex Rep")
    expect(rex).to_contain_text("Public")
    expect(rex).to_contain_text("everyone who can access the record")
    expect(rex.locator("td.excluded .count")).to_have_text("1")
    expect(rex.locator("td.excluded .count")).to_have_attribute("title", "crmail.test")
    app.shot("sharing-list")

    rex.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Mail sharing of Rex Rep")).to_be_visible()
    page.get_by_label("Only chosen users and groups").check()
    page.get_by_role("button", name="Save").click()  # nobody chosen yet
    expect(page.get_by_role("alert")).to_contain_text("Choose at least one user or group")
    expect(page.locator(".field.has-error")).to_contain_text("Chosen users")
    app.shot("sharing-form-error")

    page.get_by_label("Public", exact=True).check()
    page.get_by_label("Pia Peer <peer@crmail.test>").check()
    expect(page.get_by_label("Gus Gone <gone@crmail.test>")).to_have_count(0)
    page.get_by_label("Excluded domains").fill("crmail.test, partner.example")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Rex Rep's mail sharing was saved.")
    expect(rex).to_contain_text("peer@crmail.test")
    expect(rex.locator("td.excluded .count")).to_have_text("2")

    rex.get_by_role("link", name="Edit").click()
    page.get_by_role("button", name="Lock").click()
    expect(page.get_by_role("status")).to_contain_text("is locked")
    expect(page.get_by_role("heading", name="Mail sharing of Rex Rep")).to_contain_text("Locked")
    expect(page.get_by_role("button", name="Unlock")).to_be_visible()
    app.shot("sharing-edit-locked")

    rep = User.objects.get(email="rep@crmail.test")
    row = summary(rep)
    assert (row.mode, row.audience, row.shared_with) == ("public", "chosen", "peer@crmail.test")
    assert row.excluded == ["crmail.test", "partner.example"] and row.locked
    assert page.js_errors == []


def test_a_locked_user_sees_their_setting_read_only(app):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    actions.set_locked(None, rep, True)
    page = app.page
    app.sign_in("rep@crmail.test", f.PASSWORD)
    app.go("/settings/mail/")
    page.get_by_role("link", name="My mail sharing").click()
    expect(page).to_have_url(re.compile(r"/settings/mail/sharing/$"))
    expect(page.get_by_role("note")).to_contain_text("An administrator locked your mail sharing")
    expect(page.get_by_label("Private", exact=True)).to_be_disabled()
    expect(page.get_by_label("Excluded domains")).to_be_disabled()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    app.shot("sharing-mine-locked")
    assert page.js_errors == []


def test_a_user_adds_their_own_domain_back_from_the_suggestion(app):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    page = app.page
    app.sign_in("rep@crmail.test", f.PASSWORD)
    app.my_menu().get_by_role("link", name="Mail sharing").click()
    expect(page.get_by_role("heading", name="My mail sharing")).to_be_visible()
    expect(page.get_by_role("button", name="Add my domain")).to_have_count(0)  # excluded
    page.get_by_label("Excluded domains").fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Your mail sharing was saved.")
    assert summary(rep).excluded == []

    expect(page.locator(".suggestion")).to_contain_text("crmail.test is not excluded")
    page.get_by_role("button", name="Add my domain").click()
    expect(page.get_by_label("Excluded domains")).to_have_value("crmail.test")
    app.shot("sharing-mine-suggestion")
    assert summary(rep).excluded == []  # not saved until Save
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Your mail sharing was saved.")
    assert summary(rep).excluded == ["crmail.test"]
    assert page.js_errors == []


def test_a_user_switches_to_custom_and_shares_a_contact_from_its_page(app):
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    rep = f.user("rep@crmail.test", name="Rex Rep")
    peer = f.user("peer@crmail.test", name="Pia Peer")
    actions.set_sharing(None, rep, excluded_domains=[])  # "Add my domain" is offered
    jane = f.contact(rep, "jane@customer.test", first_name="Jane", last_name="Doe")
    synced = message("jane@customer.test", [rep.email], on=[jane], in_mailboxes=[rep])
    page = app.page
    app.sign_in("rep@crmail.test", f.PASSWORD)

    app.go("/settings/mail/sharing/")
    expect(page.get_by_role("button", name="Add my domain")).to_be_visible()
    page.get_by_label("Custom (per record)").check()
    page.get_by_label("Custom (per record)").press("Enter")  # Enter saves, not "Add my domain"
    expect(page.get_by_role("status")).to_contain_text("Your mail sharing was saved.")
    assert summary(rep).mode == "custom"
    expect(page.get_by_role("heading", name="Records you share")).to_be_visible()
    expect(page.get_by_text("No record shared yet")).to_be_visible()

    app.go(f"/contacts/{jane.pk}/")
    card = page.locator("#mail-sharing")
    expect(card).to_contain_text("Your synced mail on this contact:")
    expect(card).to_contain_text("Not shared")
    card.get_by_role("button", name="Share").click()
    expect(card).to_contain_text("is shared with everyone who can see it")
    expect(card.locator(".pill")).to_have_text("Shared")
    expect(card.get_by_role("button", name="Stop sharing")).to_be_visible()
    app.shot("sharing-record-card")
    assert SharedRecord.objects.filter(record_id=jane.pk, module="contacts").exists()
    assert visible_messages(peer, "contacts", jane.pk).filter(pk=synced.pk).exists()

    app.my_menu().get_by_role("link", name="Mail sharing").click()
    shared = page.locator("table.shared tbody tr")
    expect(shared).to_have_count(1)
    expect(shared.first).to_contain_text("Contact")
    expect(shared.first.get_by_role("link", name="Jane Doe")).to_have_attribute(
        "href", f"/contacts/{jane.pk}/"
    )
    app.shot("sharing-mine-records")
    shared.first.get_by_role("button", name="Stop sharing").click()
    expect(page.get_by_role("status")).to_contain_text("Jane Doe no longer shows your synced mail.")
    expect(page.locator("table.shared")).to_have_count(0)
    assert not visible_messages(peer, "contacts", jane.pk).filter(pk=synced.pk).exists()
    assert page.js_errors == []
