"""Rich text in the composer, in a real browser, to a real SMTP server, and back in crmail."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from typing import Any

import pytest
from playwright.sync_api import expect

from crmail.mail.display import html_to_text
from crmail.mailboxes.models import SentMessage
from crmail.web.tests.mail_samples import deliver
from crmail.web.tests.test_compose import sending_mailbox
from crmail.web.tests.test_reply import ORIGINAL_ID, original
from tests import factories as f

pytestmark = pytest.mark.browser


def received(sink: Any) -> Any:
    [got] = sink.wait_for(1, 5)
    return message_from_bytes(got.data, policy=policy.default)


def test_bold_from_the_toolbar_and_ctrl_b_and_a_link_arrive_as_html_and_show_in_crmail(
    app, smtp_sink
):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    sending_mailbox(rep, smtp_sink.port, display_name="Acme Sales")
    grace = f.contact(rep, "grace@navy.example", first_name="Grace", last_name="Hopper")
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page = app.page
    app.go(f"/contacts/{grace.pk}/")
    page.get_by_role("link", name="Send email").click()
    page.get_by_label("Subject").fill("The offer")

    editor = page.get_by_role("textbox", name="Message")
    toolbar = page.get_by_role("toolbar", name="Formatting")
    bold = toolbar.get_by_role("button", name="Bold")
    editor.click()
    page.keyboard.type("Hello Grace, this is important")
    page.keyboard.press("Shift+Control+ArrowLeft")  # selects "important"
    bold.click()
    expect(bold).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("End")
    page.keyboard.press("Control+b")  # and bold stops there
    expect(bold).to_have_attribute("aria-pressed", "false")
    page.keyboard.type(". Then ")
    page.keyboard.press("Control+b")
    page.keyboard.type("bold by key")
    page.keyboard.press("Control+b")
    page.keyboard.type(" and not after.")
    expect(bold).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("Enter")
    page.keyboard.type("Read the offer")
    page.keyboard.press("Shift+Control+ArrowLeft")
    page.once("dialog", lambda dialog: dialog.accept("https://example.com/offer"))
    toolbar.get_by_role("button", name="Link").click()
    page.keyboard.press("End")
    page.keyboard.type(".")
    expect(editor.locator("b")).to_have_count(2)
    expect(editor.get_by_role("link", name="offer")).to_have_attribute(
        "href", "https://example.com/offer"
    )
    app.shot("richtext-composer")
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page.get_by_role("status")).to_contain_text("Your email “The offer” was sent.")
    mail = received(smtp_sink)
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    markup = mail.get_body(("html",)).get_content()
    assert re.search(r"<(b|strong)>important</\1>", markup)
    assert re.search(r"<(b|strong)>bold by key</\1>", markup)
    assert re.search(r'<a href="https://example.com/offer"[^>]*>offer</a>', markup)
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.strip() == (
        "Hello Grace, this is important. Then bold by key and not after.\n"
        "Read the offer <https://example.com/offer>."
    )
    assert page.js_errors == [], page.js_errors

    # crmail shows what it sent with its formatting.
    app.go(f"/messages/{SentMessage.objects.get().message_id}/")
    frame = page.frame_locator("iframe.message-frame")
    expect(frame.locator("b", has_text="bold by key")).to_be_visible()
    expect(frame.get_by_role("link", name="offer")).to_have_attribute(
        "href", "https://example.com/offer"
    )
    app.shot("richtext-sent-message")


def test_plain_text_switch_keeps_the_quote_and_sends_text_only(app, smtp_sink):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    sending_mailbox(rep, smtp_sink.port)
    message = deliver(rep, original())
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page = app.page
    app.go(f"/messages/{message.pk}/")
    page.get_by_role("link", name="Reply", exact=True).click()

    editor = page.get_by_role("textbox", name="Message")
    expect(editor.locator("blockquote")).to_contain_text("Can you send the contract?")
    page.get_by_role("button", name="Plain text").click()
    expect(page.locator(".editor-area")).to_be_hidden()
    expect(page.get_by_role("button", name="Bold")).to_be_hidden()
    plain = page.get_by_label("Message")
    expect(plain).to_have_value(
        re.compile(r"^\n\n\nOn 3 Dec 2026, Ada Sender wrote:\n> Thanks, the price works.\n>\n")
    )
    app.shot("richtext-plain")

    # Text written in plain turns into formatting again: "> " lines as a quote.
    plain.press("Control+Home")
    plain.type("Fine.\n> a line of theirs\n")
    page.get_by_role("button", name="Plain text").click()
    expect(page.locator(".editor-area")).to_be_visible()
    expect(editor.locator("blockquote").first).to_have_text("a line of theirs")
    page.get_by_role("button", name="Plain text").click()
    plain.press("Control+Home")
    plain.type("Here it is. ")
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page.get_by_role("status")).to_contain_text("was sent")
    mail = received(smtp_sink)
    assert mail.get_content_type() == "text/plain"  # no HTML part in plain text
    assert mail["In-Reply-To"] == f"<{ORIGINAL_ID}>"
    text = mail.get_content().replace("\r\n", "\n")
    assert text.startswith("Here it is. Fine.\n> a line of theirs\n")
    assert "On 3 Dec 2026, Ada Sender wrote:\n> Thanks, the price works." in text

    # The choice stays for the next message, and switches back.
    app.go("/compose/")
    expect(page.get_by_label("Message")).to_be_visible()
    page.get_by_role("button", name="Plain text").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    assert page.js_errors == [], page.js_errors


def test_pasted_html_is_kept_to_plain_formatting(app, smtp_sink):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    sending_mailbox(rep, smtp_sink.port)
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page = app.page
    app.go("/compose/")
    editor = page.get_by_role("textbox", name="Message")
    editor.click()
    editor.evaluate(
        """(area) => {
            const data = new DataTransfer();
            data.setData("text/html", '<p onclick="steal()">Hi <b>there</b> '
                + '<img src="https://tracker.example/p.gif"><script>steal()</script>'
                + '<span style="position:fixed">styled</span> '
                + '<a href="javascript:steal()">bad</a> <a href="https://ok.example/">good</a>'
                + '<iframe src="https://evil.example/"></iframe></p>');
            area.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data}));
        }"""
    )
    expect(editor).to_contain_text("Hi there styled bad good")
    inner = editor.inner_html()
    assert "<b>there</b>" in inner
    assert '<a href="https://ok.example/">good</a>' in inner
    for gone in ("onclick", "<img", "<script", "steal", "style=", "<span", "<iframe"):
        assert gone not in inner, (gone, inner)
    # Reading the pasted HTML, the page's policy refused its handler and style; nothing ran.
    assert page.js_errors, "the hostile paste was read"
    assert all("violates the following Content Security Policy" in e for e in page.js_errors)


def test_the_editors_text_alternative_reads_as_crmails_own(app, smtp_sink):
    """Switching to plain text writes what the server would derive from the same HTML."""
    rep = f.user("rep@crmail.test", name="Rex Rep")
    sending_mailbox(rep, smtp_sink.port)
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page = app.page
    app.go("/compose/")
    markup = (
        "Hello <b>Grace</b>,<div>the terms:</div><ul><li>one</li><li>two<ol><li>a</li>"
        "<li>b</li></ol></li></ul><div>-- </div><div>Rex<br>Acme</div>"
        "<p>On 3 Dec, Ada wrote:</p><blockquote>Thanks<br><br>Can you<blockquote>earlier"
        '</blockquote></blockquote><p>See <a href="https://x.example/a">the page</a>.</p>'
    )
    page.locator(".editor-area").evaluate("(area, html) => { area.innerHTML = html; }", markup)
    page.get_by_role("button", name="Plain text").click()
    expect(page.get_by_label("Message")).to_have_value(html_to_text(markup))
