"""Flagging and filing a message from its page in real Chromium: the server changes too."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crmail.mailboxes.tests.served import served
from tests import factories as f

pytestmark = pytest.mark.browser


def test_flag_and_move_a_message_from_its_page(app, dovecot):
    org = f.org()
    inbox = served(dovecot, org.rep, "Spring order")
    page = app.page
    app.sign_in(org.rep.email, f.PASSWORD)

    app.go(f"/messages/{inbox.message.pk}/")
    card = page.get_by_role("region", name="Mailbox actions")
    expect(card).to_contain_text("Read")  # opening it marked it read on the server
    assert inbox.on_server() == [("INBOX", True, False)]
    card.get_by_role("button", name="Flag").click()
    expect(page.get_by_role("status")).to_contain_text("Flagged.")
    card = page.get_by_role("region", name="Mailbox actions")
    expect(card.get_by_role("button", name="Unflag")).to_be_visible()
    assert inbox.on_server() == [("INBOX", True, True)]

    card.get_by_label("Move to").select_option(label="Archive")
    card.get_by_role("button", name="Move", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Moved to Archive.")
    expect(page).to_have_url(re.compile(r"#mailbox-actions$"))
    card = page.get_by_role("region", name="Mailbox actions")
    expect(card.locator(".folder-name")).to_have_text(["Archive"])
    assert inbox.on_server() == [("Archive", True, True)] == inbox.copies()
    page.mouse.move(0, 0)
    app.shot("mailbox-actions-moved")
