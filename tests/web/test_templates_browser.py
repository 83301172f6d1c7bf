"""Writing a template with its live preview, then using it from a deal, in a real browser."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from email import message_from_bytes, policy

import pytest
from playwright.sync_api import expect

from crmail.emailtemplates.models import EmailTemplate
from crmail.mailboxes.models import Mailbox, SentMessage
from tests import factories as f

pytestmark = pytest.mark.browser

BODY = (
    "Dear {{Contact.first_name}},\n\n"
    "Here is the quote for {{Deal.name}} ({{Account.name}}): {{Deal.amount}}, "
    "valid until {{Deal.closing_date}}.\n\n{{User.signature}}"
)
MERGED = (
    "Dear Grace,\n\nHere is the quote for Navy compilers (US Navy): 12,500.00, "
    "valid until 24 Dec 2026.\n\nRex Rep\nAcme sales"
)


def test_write_a_template_preview_it_live_and_send_it_from_a_deal(app, smtp_sink):
    rep = f.user("rep@crmail.test", name="Rex Rep", signature="Rex Rep\nAcme sales")
    Mailbox.objects.create(
        owner=rep,
        email="rep@crmail.test",
        protocol="imap",
        host="127.0.0.1",
        port=1,
        security="none",
        login="rep",
        secret="pw",
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_security="none",
        smtp_same_credentials=False,
        store_sent_on_server=False,
    )
    navy = f.account(rep, "US Navy")
    grace = f.contact(
        rep, "grace@navy.example", first_name="Grace", last_name="Hopper", account=navy
    )
    deal = f.deal(
        rep,
        "Navy compilers",
        amount=Decimal("12500"),
        closing_date=datetime.date(2026, 12, 24),
        contact=grace,
    )
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page = app.page

    page.get_by_role("navigation", name="Mail").get_by_role("link", name="Templates").click()
    expect(page.get_by_role("heading", name="Email templates")).to_be_visible()
    page.get_by_role("link", name="New template").click()
    page.get_by_label("Name").fill("Quote")
    page.get_by_label("Subject").fill("Your quote for {{Deal.name}}")
    page.get_by_label("Message").fill(BODY)
    page.get_by_label("Preview for").select_option(label="Navy compilers")
    # The preview follows the editor without a page load.
    preview = page.locator("#template-preview")
    expect(preview.locator(".preview-body")).to_have_text(MERGED)
    expect(preview.locator(".preview-subject")).to_have_text("Your quote for Navy compilers")
    page.get_by_label("Message").press_sequentially(" {{Deal.owner}}")
    expect(preview.get_by_role("alert")).to_contain_text("{{Deal.owner}}")
    app.shot("template-unknown-field")
    page.get_by_label("Message").fill(BODY)
    expect(preview.locator(".preview-body")).to_have_text(MERGED)
    app.shot("template-preview")
    page.get_by_role("button", name="Add template").click()
    expect(page.get_by_role("status")).to_contain_text("The template “Quote” was added.")
    expect(page.get_by_role("link", name="Quote")).to_be_visible()
    app.shot("templates-list")
    assert EmailTemplate.objects.get().body == BODY

    app.go(f"/deals/{deal.pk}/")
    page.get_by_role("link", name="Send email").click()
    expect(page.get_by_label("To", exact=True)).to_have_value("grace@navy.example")
    page.get_by_label("Use template").select_option(label="Quote")
    page.get_by_role("button", name="Use template").click()
    expect(page.get_by_label("Subject")).to_have_value("Your quote for Navy compilers")
    # A template is text: the editor shows it as it is.
    expect(page.get_by_role("textbox", name="Message")).to_contain_text(
        "Here is the quote for Navy compilers (US Navy)"
    )
    expect(page.get_by_label("To", exact=True)).to_have_value("grace@navy.example")
    app.shot("compose-with-template")
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/deals/{deal.pk}/$"))
    [got] = smtp_sink.wait_for(1, 5)
    mail = message_from_bytes(got.data, policy=policy.default)
    assert mail["Subject"] == "Your quote for Navy compilers"
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n").strip() == MERGED
    assert "Here is the quote for Navy compilers" in mail.get_body(("html",)).get_content()
    assert SentMessage.objects.get().record_id == deal.pk
    assert page.js_errors == [], page.js_errors
