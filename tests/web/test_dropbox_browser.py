"""The BCC Dropbox card, in a real browser: not set up, then the address to copy, the mail
it received filed on a deal, a pattern refused in words, and a new address."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import pytest
from playwright.sync_api import expect

from crmail.dropbox.server import Limits, Receiver
from tests import factories as f
from tests.operator import free_port

pytestmark = pytest.mark.browser

DOMAIN = "dropbox.example.com"


def test_the_dropbox_card(app, settings):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    ann = f.contact(rep, "ann@acme.example", first_name="Ann", last_name="Lee")
    f.deal(rep, "Acme renewal", contact=ann)
    page = app.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    app.sign_in("rep@crmail.test", f.PASSWORD)

    settings.CRMAIL_DROPBOX_DOMAIN = ""
    app.go("/settings/mail/")
    card = page.locator("#dropbox")
    expect(card).to_contain_text("Your administrator has not set up the BCC Dropbox")
    expect(card.get_by_role("button", name="Copy")).to_have_count(0)
    app.shot("dropbox-not-set-up")

    settings.CRMAIL_DROPBOX_DOMAIN = DOMAIN
    app.go("/settings/mail/")
    address = card.locator("#dropbox-address")
    expect(address).to_have_text(f"u-{address.inner_text()[2:]}")
    first = address.inner_text()
    assert first.endswith("@" + DOMAIN)
    expect(card).to_contain_text("Bcc")
    expect(card).to_contain_text("rep@crmail.test")  # the addresses it takes mail from
    card.get_by_role("button", name="Copy").click()
    expect(card.get_by_role("status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == first

    receiver = Receiver("127.0.0.1", free_port(), Limits(1_000_000, 30, 50))
    receiver.start()
    try:
        msg = EmailMessage()
        msg["From"] = "Rex Rep <rep@crmail.test>"
        msg["To"] = "Ann Lee <ann@acme.example>"
        msg["Subject"] = "Renewal terms"
        msg.set_content("As discussed.")
        with smtplib.SMTP("127.0.0.1", receiver.port, timeout=30) as client:
            client.sendmail("rep@crmail.test", [first], msg.as_bytes(policy=SMTP_POLICY))
    finally:
        receiver.stop()
    app.go("/settings/mail/")
    row = card.locator("table.dropbox-recent tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Renewal terms")
    row.get_by_role("link", name="On the contact's deal").click()
    expect(page.get_by_role("heading", name="Acme renewal")).to_be_visible()
    expect(page.get_by_text("Renewal terms").first).to_be_visible()
    views = page.get_by_role("navigation", name="Email views")
    views.get_by_role("link", name="Sent from crmail").click()
    expect(page.get_by_text("Renewal terms")).to_have_count(0)
    views.get_by_role("link", name="BCC Dropbox").click()
    expect(page.get_by_text("Renewal terms").first).to_be_visible()
    app.shot("dropbox-deal-emails")

    app.go("/settings/mail/")
    card.get_by_label("Pattern for forwarded conversations").fill("(?P<address>unclosed")
    card.get_by_role("button", name="Save the pattern").click()
    expect(card.locator(".field.has-error")).to_contain_text(
        "not a regular expression crmail can read"
    )
    expect(card.get_by_label("Pattern for forwarded conversations")).to_have_value(
        "(?P<address>unclosed"
    )
    app.shot("dropbox-pattern-refused")
    card.get_by_label("Pattern for forwarded conversations").fill(
        r"(?m)^Original sender: (?P<address>\S+)"
    )
    card.get_by_role("button", name="Save the pattern").click()
    expect(page.get_by_role("status").first).to_contain_text("searched with your pattern")

    card.get_by_role("button", name="Make a new address").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Mail to {first} is refused")
    expect(address).not_to_have_text(first)
    app.shot("dropbox-card")
    assert not page.js_errors
