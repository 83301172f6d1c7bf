"""Organisation addresses in a real browser (SPEC F16): an administrator adds sales@, reads
the code from the mail a real SMTP server received and enters it; a salesperson then finds
it among the composer's From choices, is told plainly that replies to it are not tracked,
and sends as it (Reply-To too) through their own mailbox to another real SMTP server."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest
from playwright.sync_api import expect

from crmail.mailboxes.models import Mailbox
from crmail.orgaddresses.tests.helpers import mailed_code
from tests import factories as f

pytestmark = pytest.mark.browser


def test_add_verify_and_send_as_an_organisation_address(app, own_mail_sink, smtp_sink_factory):
    f.user("admin@crmail.test", name="Ada Admin", admin=True)
    rep = f.user("rep@crmail.test", name="Rex Rep")
    outgoing = smtp_sink_factory()
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
        smtp_port=outgoing.port,
        smtp_security="none",
        smtp_same_credentials=False,
        store_sent_on_server=False,
    )
    page = app.page

    app.sign_in("admin@crmail.test", f.PASSWORD)
    app.admin_menu().get_by_role("link", name="Organisation addresses").click()
    expect(page.get_by_role("heading", name="Organisation addresses")).to_be_visible()
    expect(page.get_by_text("No organisation addresses yet")).to_be_visible()
    page.get_by_role("link", name="Add an address").click()
    page.get_by_label("Address").fill("not an address")
    page.get_by_role("button", name="Add and mail a code").click()
    expect(page.locator(".field.has-error")).to_contain_text("is not a valid email address")
    app.shot("org-address-refused")
    page.get_by_label("Address").fill("sales@acme.example")
    page.get_by_label("Name").fill("Acme Sales")
    page.get_by_label("Everyone may send as it").check()
    page.get_by_role("button", name="Add and mail a code").click()

    expect(page.get_by_role("heading", name="sales@acme.example")).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("A code was mailed to sales@acme")
    expect(page.get_by_text("Code sent")).to_be_visible()
    code = mailed_code(own_mail_sink, to="sales@acme.example")
    page.get_by_label("Code").fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator(".field.has-error")).to_contain_text("That code is not right (4 tries")
    app.shot("org-address-wrong-code")
    page.get_by_label("Code").fill(code[:3] + " " + code[3:])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("status").first).to_contain_text("sales@acme.example is verified")
    expect(page.locator("#org-tracking")).to_have_text(
        "Replies are not tracked: no mailbox connected over IMAP or POP receives "
        "sales@acme.example; connect it to see replies in crmail."
    )
    app.shot("org-address-verified")
    page.get_by_role("link", name="Organisation addresses").first.click()
    row = page.locator("table.org-addresses tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Verified")
    expect(row).to_contain_text("Everyone")
    app.shot("org-addresses")
    app.sign_out()

    app.sign_in("rep@crmail.test", f.PASSWORD)
    page.get_by_role("navigation", name="Mail").get_by_role("link", name="Compose").click()
    sender = page.get_by_label("From")
    expect(sender).to_have_value("rep@crmail.test")
    expect(sender.locator("optgroup")).to_have_count(2)
    expect(sender.locator('optgroup[label="Organisation addresses"] option')).to_have_text(
        ["Acme Sales <sales@acme.example>"]
    )
    note = page.locator('[data-from-note="sales@acme.example"]')
    expect(note).to_be_hidden()  # the rep's own address is chosen: nothing to say
    sender.select_option("sales@acme.example")
    expect(note).to_be_visible()
    expect(note).to_contain_text("Replies are not tracked")
    page.get_by_label("Reply-To").select_option("sales@acme.example")
    page.get_by_label("To", exact=True).fill("ann@customer.example")
    page.get_by_label("Subject").fill("Your order")
    page.get_by_label("Message").fill("Thank you for your order.")
    app.shot("compose-from-organisation-address")
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page).not_to_have_url(re.compile(r"/compose/"))
    statuses = page.get_by_role("status")
    expect(statuses.first).to_contain_text("Your email “Your order” was sent.")
    expect(page.get_by_text("Sent as sales@acme.example. Replies are not tracked")).to_be_visible()
    app.shot("sent-as-organisation-address")
    [got] = outgoing.wait_for(1, 5)
    mail = message_from_bytes(got.data, policy=policy.default)
    assert mail["From"] == "Acme Sales <sales@acme.example>"
    assert mail["Reply-To"] == "sales@acme.example"
    assert got.rcpt_tos == ["ann@customer.example"]
    assert not page.js_errors
