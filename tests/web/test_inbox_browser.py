"""The sales inbox in real Chromium, on a real Dovecot: streams, bulk actions, shortcuts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from crmail.mailboxes.tests.served import sync
from crmail.mailboxes.tests.test_sync import mail
from tests import factories as f

pytestmark = pytest.mark.browser


def message(n: int, sender: str, subject: str) -> bytes:
    return mail(n, subject).replace(f"client{n}@example.com".encode(), sender.encode())


@pytest.fixture
def desk(dovecot):
    """A rep's mailbox: mail from a deal's contact, a plain contact, a lead and a stranger."""
    org = f.org()
    rep = org.rep
    buyer = f.contact(rep, "buyer@client.example", last_name="Buyer")
    f.deal(rep, "Fleet renewal", contact=buyer, amount=Decimal("50000"))
    f.contact(rep, "friend@client.example", last_name="Friend")
    f.lead(rep, "maybe@prospect.example", last_name="Maybe")
    login, password = dovecot.new_user()
    dovecot.create_mailbox(login, "Archive")
    dovecot.create_mailbox(login, "Trash")
    for n, sender, subject in (
        (1, "buyer@client.example", "Fleet renewal terms"),
        (2, "friend@client.example", "Lunch next week"),
        (3, "maybe@prospect.example", "Pricing question"),
        (4, "stranger@nowhere.example", "Partnership idea"),
    ):
        dovecot.deliver(login, message(n, sender, subject))
    mailbox = f.mailbox(dovecot, login, password, owner=rep)
    sync(mailbox)
    return org, dovecot, login


SUBJECTS = {
    "<m1@example.com>": "Fleet renewal terms",
    "<m2@example.com>": "Lunch next week",
    "<m3@example.com>": "Pricing question",
    "<m4@example.com>": "Partnership idea",
}


def server_state(dovecot, login):
    """{subject: (folder, seen, flagged)} as doveadm sees the mailbox."""
    out = {}
    for folder in dovecot.list_mailboxes(login):
        for m in dovecot.messages(login, folder):
            flags = set(m["flags"])
            out[SUBJECTS[m["message_id"]]] = (folder, "\\Seen" in flags, "\\Flagged" in flags)
    return out


def test_streams_show_deals_first_and_bulk_actions_change_the_server(app, desk):
    org, dovecot, login = desk
    page = app.page
    app.sign_in(org.rep.email, f.PASSWORD)
    page.get_by_role("navigation", name="Mail").get_by_role("link", name="Inbox").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("4 conversations")
    streams = page.get_by_role("navigation", name="Streams")
    expect(streams.get_by_role("link", name="Deals 1")).to_be_visible()
    expect(page.locator(".inbox-row.unread")).to_have_count(4)
    stranger = page.locator(".inbox-row", has_text="Partnership idea")
    expect(stranger.get_by_role("link", name="Add as contact")).to_be_visible()
    expect(
        page.locator(".inbox-row", has_text="Fleet renewal terms").get_by_role(
            "link", name="Fleet renewal", exact=True
        )
    ).to_be_visible()
    app.shot("inbox-all")

    streams.get_by_role("link", name="Deals 1").click()
    expect(page.locator(".inbox-row")).to_have_count(1)
    expect(page.locator(".inbox-row")).to_contain_text("Fleet renewal terms")
    app.shot("inbox-deals")

    page.get_by_role("navigation", name="Streams").get_by_role("link", name="All").click()
    page.get_by_label("Select “Lunch next week”").check()
    page.get_by_label("Select “Pricing question”").check()
    page.get_by_role("button", name="Mark read").click()
    expect(page.get_by_role("status")).to_contain_text("Marked 2 conversations read.")
    state = server_state(dovecot, login)
    assert state["Lunch next week"] == ("INBOX", True, False)
    assert state["Pricing question"] == ("INBOX", True, False)
    assert state["Partnership idea"] == ("INBOX", False, False)
    expect(page.locator(".inbox-row.unread")).to_have_count(2)

    page.get_by_label("Select “Partnership idea”").check()
    page.get_by_label("Move to").select_option(label="Archive")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Moved 1 conversation.")
    assert server_state(dovecot, login)["Partnership idea"][0] == "Archive"
    expect(page.locator(".inbox-row")).to_have_count(3)
    app.shot("inbox-after-bulk")


def test_keyboard_moves_selects_helps_and_deletes_on_the_server(app, desk):
    org, dovecot, login = desk
    page = app.page
    app.sign_in(org.rep.email, f.PASSWORD)
    app.go("/inbox/")
    rows = page.locator(".inbox-row")
    expect(rows).to_have_count(4)
    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_class("inbox-row unread current")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows.nth(1)).to_have_class("inbox-row unread current")
    expect(page.locator(".inbox-row.current")).to_have_count(1)
    subject = rows.nth(1).locator(".inbox-subject").inner_text()

    page.keyboard.press("?")
    help_box = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_box).to_be_visible()
    expect(help_box).to_contain_text("Reply to all")
    app.shot("inbox-help")
    page.keyboard.press("Escape")
    expect(help_box).to_be_hidden()

    # Typing in the search box is typing, not shortcuts.
    page.keyboard.press("/")
    expect(page.locator("#topsearch-q")).to_be_focused()
    page.keyboard.type("jj#")
    expect(page.locator("#topsearch-q")).to_have_value("jj#")
    expect(rows).to_have_count(4)
    page.locator("#topsearch-q").blur()

    page.keyboard.press("#")
    expect(page.get_by_role("status")).to_contain_text("Deleted 1 conversation.")
    assert server_state(dovecot, login)[subject][0] == "Trash"
    expect(rows).to_have_count(3)

    page.keyboard.press("j")
    first = rows.nth(0).locator(".inbox-subject").inner_text()
    page.keyboard.press("e")
    expect(page.get_by_role("status")).to_contain_text("Archived 1 conversation.")
    assert server_state(dovecot, login)[first][0] == "Archive"
    expect(rows).to_have_count(2)
    page.keyboard.press("j")
    page.keyboard.press("r")
    page.wait_for_url("**/compose/?message=*&mode=reply")


def test_mail_whose_body_is_processing_says_so_then_shows_its_snippet(app, desk):
    # A large first sync lists mail with its header fields; its body follows (064).
    from crmail.mail.models import Message

    org, _, _ = desk
    lunch = Message.objects.get(subject="Lunch next week")
    snippet = lunch.snippet
    Message.objects.filter(pk=lunch.pk).update(snippet="", parse_state="processing")
    page = app.page
    app.sign_in(org.rep.email, f.PASSWORD)
    page.get_by_role("navigation", name="Mail").get_by_role("link", name="Inbox").click()
    row = page.locator(".inbox-row", has_text="Lunch next week")
    expect(row.locator(".inbox-snippet")).to_have_text("Processing…")
    app.shot("inbox-processing")
    Message.objects.filter(pk=lunch.pk).update(snippet=snippet, parse_state="parsed")
    page.reload()
    expect(row.locator(".inbox-snippet")).to_have_text(snippet)


def test_on_a_phone_the_inbox_fits_the_screen_and_a_row_shows_sender_date_and_subject(app, desk):
    org, _, _ = desk
    page = app.page
    page.set_viewport_size({"width": 400, "height": 800})
    app.sign_in(org.rep.email, f.PASSWORD)
    app.go("/inbox/")
    row = page.locator(".inbox-row", has_text="Fleet renewal terms")
    expect(row).to_be_visible()
    # Nothing runs off the right edge: no sideways scrolling of the page.
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    for part in (".inbox-from", ".inbox-date", ".inbox-subject"):
        box = row.locator(part).bounding_box()
        assert box is not None and box["x"] + box["width"] <= 400, part
    sender, subject = row.locator(".inbox-from"), row.locator(".inbox-subject")
    assert subject.bounding_box()["y"] > sender.bounding_box()["y"]  # the line below
    app.shot("inbox-phone")
