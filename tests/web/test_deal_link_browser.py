"""Linking a message to a deal by hand in real Chromium, seeing it on the deal, moving it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crmail.linking.models import Link
from crmail.web.tests.mail_samples import deliver, text_message
from tests import factories as f

pytestmark = pytest.mark.browser

SENDER = "ada@vendor.example"  # the From of text_message


def test_link_a_message_to_a_deal_see_it_there_and_move_it(app):
    org = f.org()
    rep = org.rep
    account = f.account(rep, "Vendor Ltd")
    ada = f.contact(rep, SENDER, first_name="Ada", last_name="Sender", account=account)
    note = deliver(rep, text_message("About the spring order.", subject="Spring order"))
    # Synced mail reaches the contact by her address, never a deal by itself.
    assert Link.objects.filter(message=note, module="contacts", record_id=ada.pk).exists()
    assert not Link.objects.filter(message=note, module="deals").exists()
    alpha = f.deal(rep, "Alpha order", contact=ada)
    f.deal(rep, "Beta renewal", account=account)
    other = f.deal(rep, "Other project")
    page = app.page
    app.sign_in(rep.email, f.PASSWORD)

    app.go(f"/messages/{note.pk}/")
    deals = page.get_by_role("region", name="Deals")
    expect(deals).to_contain_text("This message is not linked to a deal.")
    deals.get_by_text("Link to a deal").click()
    expect(deals.get_by_role("button", name="Link to Beta renewal")).to_be_visible()
    deals.get_by_role("button", name="Link to Alpha order").click()
    expect(page.get_by_role("status")).to_contain_text("Linked to the deal Alpha order.")
    deals = page.get_by_role("region", name="Deals")
    expect(deals.get_by_role("link", name="Alpha order")).to_be_visible()
    expect(deals).to_contain_text(f"Linked by {rep.name} on ")
    page.mouse.move(0, 0)
    app.shot("deal-link-message")

    app.go(f"/deals/{alpha.pk}/")
    emails = page.get_by_role("region", name=re.compile("^Emails"))
    rows = emails.locator(".email-list > .email-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Spring order")
    rows.first.get_by_text("Why is it here?").click()
    expect(rows.first).to_contain_text(f"Linked by {rep.name} on ")
    page.mouse.move(0, 0)
    app.shot("deal-link-deal-emails")

    rows.first.get_by_role("link", name="Move to another deal").click()
    expect(page).to_have_url(re.compile(rf"/messages/{note.pk}/.*#deals$"))
    deals = page.get_by_role("region", name="Deals")
    deals.get_by_text("Move to…").click()
    deals.get_by_role("searchbox").first.fill("other")
    move = deals.get_by_role("button", name="Move to Other project")
    expect(move).to_be_visible()  # found by the htmx search
    expect(deals.get_by_role("button", name="Move to Beta renewal")).to_have_count(0)
    page.mouse.move(0, 0)
    app.shot("deal-link-move-search")
    move.click()
    expect(page.get_by_role("status")).to_contain_text(
        "Moved from the deal Alpha order to the deal Other project."
    )
    deals = page.get_by_role("region", name="Deals")
    expect(deals.get_by_role("link", name="Other project")).to_be_visible()
    expect(deals.get_by_role("link", name="Alpha order")).to_have_count(0)

    app.go(f"/deals/{alpha.pk}/")
    expect(page.get_by_text("No email you may see on this deal yet.")).to_be_visible()
    app.go(f"/deals/{other.pk}/")
    rows = page.get_by_role("region", name=re.compile("^Emails")).locator(".email-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Spring order")
    page.mouse.move(0, 0)
    app.shot("deal-link-moved")
    assert page.js_errors == []
