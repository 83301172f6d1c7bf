"""Writing an email from a contact's page, in a real browser, to a real SMTP server."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest
from playwright.sync_api import expect

from crmail.mailboxes.models import Mailbox, SentMessage
from tests import factories as f

pytestmark = pytest.mark.browser


def test_open_a_contact_click_send_email_and_the_server_receives_it(app, smtp_sink):
    rep = f.user("rep@crmail.test", name="Rex Rep")
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
        extra_from_addresses=["sales@crmail.test"],
    )
    contact = f.contact(rep, "grace@navy.example", first_name="Grace", last_name="Hopper")
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page = app.page

    page.get_by_role("navigation", name="Modules").get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="Grace Hopper").click()
    page.get_by_role("link", name="Send email").click()

    expect(page.get_by_role("heading", name="Email Grace Hopper")).to_be_visible()
    expect(page.get_by_label("To", exact=True)).to_have_value("grace@navy.example")
    expect(page.get_by_label("From")).to_have_value("rep@crmail.test")
    page.get_by_label("Cc", exact=True).fill("bob@navy.example")
    page.get_by_label("Subject").fill("Compiler demo")
    page.get_by_label("Message").fill("Hello Grace,\n\nShall we meet on Tuesday?\n\nRex")
    app.shot("compose")
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/contacts/{contact.pk}/$"))
    expect(page.get_by_role("status")).to_contain_text("Your email “Compiler demo” was sent.")
    [got] = smtp_sink.wait_for(1, 5)
    assert sorted(got.rcpt_tos) == ["bob@navy.example", "grace@navy.example"]
    mail = message_from_bytes(got.data, policy=policy.default)
    assert mail["From"] == "Rex Rep <rep@crmail.test>"
    assert mail["Subject"] == "Compiler demo"
    # Written in the editor: a text part that reads as typed, and the same in HTML.
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Hello Grace,\n\nShall we meet on Tuesday?\n\nRex")
    assert "Shall we meet on Tuesday?" in mail.get_body(("html",)).get_content()
    assert SentMessage.objects.get().record_id == contact.pk
    assert page.js_errors == []


def test_the_compose_page_explains_a_missing_mailbox_and_a_bad_address(app, smtp_sink):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page = app.page
    page.get_by_role("navigation", name="Mail").get_by_role("link", name="Compose").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("You have no active mailbox")
    app.shot("compose-no-mailbox")
    expect(alert.get_by_role("link", name="Open mail settings")).to_have_attribute(
        "href", "/settings/mail/"
    )

    Mailbox.objects.create(
        owner=rep,
        email="rep@crmail.test",
        host="127.0.0.1",
        port=1,
        security="none",
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_security="none",
        smtp_same_credentials=False,
        store_sent_on_server=False,
    )
    page.reload()
    page.get_by_label("To", exact=True).fill("grace at navy")
    page.get_by_label("Subject").fill("Hello")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator(".field.has-error")).to_contain_text("is not a valid email address")
    app.shot("compose-error")
    assert smtp_sink.messages == []
    assert page.js_errors == []
