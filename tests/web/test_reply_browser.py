"""Answering a customer from the message page, in a real browser, to a real SMTP server."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest
from playwright.sync_api import expect

from crmail.mailboxes.models import SentMessage
from crmail.web.tests.mail_samples import deliver
from crmail.web.tests.test_compose import sending_mailbox
from crmail.web.tests.test_reply import ORIGINAL_ID, original
from tests import factories as f

pytestmark = pytest.mark.browser


def test_reply_from_the_message_page_with_a_file_and_back_to_the_contact(app, smtp_sink, tmp_path):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    rep.signature = "Rex Rep\nAcme Sales"
    rep.save(update_fields=["signature"])
    sending_mailbox(rep, smtp_sink.port, display_name="Acme Sales")
    ada = f.contact(rep, "ada@vendor.example", first_name="Ada", last_name="Sender")
    deliver(rep, original())
    contract = tmp_path / "contract.txt"
    contract.write_text("Signed by both parties.")
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page = app.page

    app.go(f"/contacts/{ada.pk}/")
    page.get_by_role("link", name="Spring offer").first.click()
    crumbs = page.get_by_role("navigation", name="Breadcrumbs")
    expect(crumbs.get_by_role("link", name="Ada Sender")).to_be_visible()
    expect(page.get_by_role("link", name="Ada Sender <ada@vendor.example>")).to_have_attribute(
        "href", f"/contacts/{ada.pk}/"
    )
    app.shot("message-answer-buttons")
    page.get_by_role("link", name="Reply", exact=True).click()

    expect(page.get_by_role("heading", name="Reply")).to_be_visible()
    expect(page.get_by_label("To", exact=True)).to_have_value("desk@vendor.example")
    expect(page.get_by_label("Subject")).to_have_value("Re: Spring offer")
    body = page.get_by_role("textbox", name="Message")  # the rich-text editor
    expect(body).to_contain_text("Rex RepAcme SalesOn 3 Dec 2026, Ada Sender wrote:")
    expect(body.locator("blockquote")).to_contain_text("Can you send the contract?")
    body.press("Control+Home")
    body.type("Here is the contract.")
    page.get_by_label("Attach files").set_input_files(str(contract))
    app.shot("reply-composer")
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/contacts/{ada.pk}/$"))
    expect(page.get_by_role("status")).to_contain_text("Your email “Re: Spring offer” was sent.")
    [got] = smtp_sink.wait_for(1, 5)
    mail = message_from_bytes(got.data, policy=policy.default)
    assert mail["From"] == "Acme Sales <rep@crmail.test>"
    assert mail["In-Reply-To"] == f"<{ORIGINAL_ID}>"
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Here is the contract.\n\n-- \nRex Rep\nAcme Sales\n\nOn 3 Dec")
    assert "> Can you send the contract?" in text
    assert [p.get_filename() for p in mail.iter_attachments()] == ["contract.txt"]
    assert SentMessage.objects.get().record_id == ada.pk
    assert page.js_errors == []
