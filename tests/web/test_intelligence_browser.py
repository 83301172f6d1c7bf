"""Email intelligence in real Chromium, on real mail that went through the outbox: a sales
manager finds the complaints from open deals this week (the ready-made filter of search
and of a deal's Emails list), and a salesperson accepts the phone number crmail read from
a customer's signature, ticking only that detail."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crmail.crm.models import Contact
from crmail.events import dispatch
from crmail.intelligence import pipeline
from crmail.intelligence.models import Result
from crmail.intelligence.tests import world as w
from crmail.intelligence.tests.substitute import engine_installed, use_substitute
from tests import factories as f

pytestmark = pytest.mark.browser


@pytest.fixture
def analyser(monkeypatch):  # type: ignore[no-untyped-def]
    """crmail's own analysis (its deterministic stand-in only where it is not installed)."""
    pipeline._version.cache_clear()
    yield None if engine_installed() else use_substitute(monkeypatch)
    pipeline._version.cache_clear()


@pytest.fixture
def mail(app, analyser):  # type: ignore[no-untyped-def]
    """Rex's mail from Jane, analysed as crmail does after linking."""
    dispatch.start_all()
    world = w.build_world(f.org())
    complaint = w.receive(world, w.COMPLAINT, subject="Broken delivery", deal=world.deal)
    question = w.receive(world, w.QUESTION, subject="Price list", deal=world.deal)
    closed = w.receive(world, w.COMPLAINT, subject="Pilot invoice wrong", deal=world.won)
    return world, complaint, question, closed


def test_a_sales_manager_finds_the_complaints_from_open_deals_this_week(app, mail):  # type: ignore[no-untyped-def]
    world, complaint, _, _ = mail
    page = app.page
    app.sign_in(world.org.manager.email, f.PASSWORD)
    app.go("/search/")
    page.get_by_role("link", name="Complaints from open deals this week").click()
    page.wait_for_url(re.compile(r"preset=complaints-open-deals-week"))
    found = page.get_by_role("region", name=re.compile("^Mail"))
    expect(found.get_by_role("link", name="Broken delivery")).to_be_visible()
    expect(found).not_to_contain_text("Price list")  # a question, not a complaint
    expect(found).not_to_contain_text("Pilot invoice wrong")  # its deal is closed
    expect(found.locator(".intel-intent").first).to_have_text("Complaint")
    app.shot("intelligence-manager-search")

    app.go(f"/deals/{world.deal.pk}/")
    emails = page.get_by_role("region", name=re.compile("^Emails"))
    expect(emails.locator(".email-row")).to_have_count(2)
    emails.get_by_label("Intent").select_option("complaint")
    expect(emails.locator(".email-row")).to_have_count(1)
    expect(emails.locator(".email-row")).to_contain_text("Broken delivery")
    app.settled()
    app.shot("intelligence-manager-deal-emails")

    found_link = page.get_by_role("link", name="Broken delivery")
    found_link.click()
    panel = page.get_by_role("region", name=re.compile("^Intelligence"))
    expect(panel).to_contain_text("Negative")
    expect(panel).to_contain_text("Complaint")
    app.shot("intelligence-manager-message")

    app.go("/reports/?group_by=intent")
    table = page.locator("#report-results table").first
    expect(table).to_contain_text("Complaint")
    app.shot("intelligence-manager-report")
    assert complaint.pk
    assert page.js_errors == []


def test_a_salesperson_accepts_a_phone_number_read_from_a_signature(app, mail):  # type: ignore[no-untyped-def]
    world, complaint, _, _ = mail
    page = app.page
    app.sign_in(world.org.rep.email, f.PASSWORD)
    app.go(f"/messages/{complaint.pk}/")
    panel = page.get_by_role("region", name=re.compile("^Intelligence"))
    offer = panel.locator(".intel-signature")
    expect(offer).to_contain_text("Jane Doe")
    phone_row = offer.locator("tr", has_text="Phone")
    expect(phone_row).to_contain_text("+44 20 7946 0958")
    app.shot("intelligence-signature-offered")
    offer.get_by_label("Apply the phone").check()
    offer.get_by_role("button", name="Accept ticked").click()
    expect(panel.get_by_role("status")).to_have_text("Updated Jane Doe: phone.")
    expect(panel).to_contain_text("Applied: phone")
    app.shot("intelligence-signature-accepted")
    jane = Contact.objects.get(pk=world.jane.pk)
    assert jane.phone == "+44 20 7946 0958"
    assert jane.title == ""  # offered too, but not ticked: left as it was

    app.go(f"/contacts/{world.jane.pk}/")
    expect(page.locator("main")).to_contain_text("+44 20 7946 0958")
    app.shot("intelligence-contact-updated")

    app.go("/inbox/")
    page.get_by_role("link", name="Negative mail from open deals this week").click()
    rows = page.locator(".inbox-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Broken delivery")
    expect(rows.first.locator(".intel-sentiment")).to_have_text("Negative")
    app.shot("intelligence-inbox-filtered")
    assert page.js_errors == []


def test_an_administrator_turns_it_off_and_the_panel_goes(app, mail):  # type: ignore[no-untyped-def]
    world, complaint, _, _ = mail
    Result.objects.filter(message=complaint).update(version="an-older-model")  # an upgrade
    page = app.page
    app.sign_in(world.org.admin.email, f.PASSWORD)
    app.admin_menu().get_by_role("link", name="Email intelligence").click()
    box = page.get_by_label(re.compile("^Analyse mail on this server"))
    expect(box).to_be_checked()
    expect(page.locator("#intelligence-outdated")).to_contain_text(
        "1 message has results from an earlier version of the analysis"
    )
    app.shot("intelligence-settings")
    box.uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messages, [role=status], .flash-success").first).to_contain_text(
        "Email intelligence is off."
    )
    app.sign_out()
    app.sign_in(world.org.rep.email, f.PASSWORD)
    app.go(f"/messages/{complaint.pk}/")
    expect(page.get_by_role("region", name="Message details")).to_be_visible()
    expect(page.get_by_role("region", name=re.compile("^Intelligence"))).to_have_count(0)
    assert page.js_errors == []
