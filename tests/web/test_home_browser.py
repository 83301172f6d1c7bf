"""The home page in real Chromium: a new user is asked to connect a mailbox; a user with
mail starts the day with the customer threads awaiting a reply and the deals with news."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crmail.search.tests.mail import deliver
from crmail.sharing.tests import build
from tests import factories as f

pytestmark = pytest.mark.browser


def _raw(sender: str, to: str, subject: str, days_ago: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<home-{subject.replace(' ', '-')}@crmail.test>"
    msg["Date"] = format_datetime(timezone.now() - timedelta(days=days_ago))
    msg.set_content("Hello, could you send the updated quote?")
    return msg.as_bytes()


def test_a_new_user_is_asked_to_connect_a_mailbox(app):  # type: ignore[no-untyped-def]
    rep = f.user("rep@crmail.test", name="Rex Rep")
    app.sign_in(rep.email, f.PASSWORD)
    app.go("/")
    expect(app.page.get_by_role("heading", name="Connect your mailbox")).to_be_visible()
    app.shot("home-new-user")
    app.page.get_by_role("link", name="Connect a mailbox").click()
    app.page.wait_for_url("**/settings/mail/connect/")
    assert not app.page.js_errors


def test_the_day_starts_with_waiting_customers_and_deals_with_news(app):  # type: ignore[no-untyped-def]
    rep = f.user("rep@crmail.test", name="Rex Rep")
    box = build.mailbox(rep)
    ann = f.contact(rep, "ann@client.example", first_name="Ann", last_name="Lee")
    f.deal(rep, "Lee renewal", amount=24000, contact=ann)
    deliver(
        None,
        _raw("Ann Lee <ann@client.example>", rep.email, "Updated quote please", 3),
        to=[box],
        on=[ann],
    )
    deliver(None, _raw("news@shop.example", rep.email, "Weekly offers", 3), to=[box])

    app.sign_in(rep.email, f.PASSWORD)
    app.go("/")
    unread = app.page.get_by_role("region", name="Unread customer mail")
    expect(unread.get_by_role("link", name="Updated quote please")).to_be_visible()
    expect(unread.get_by_text("Deal", exact=True)).to_be_visible()
    expect(unread.get_by_text("Weekly offers")).to_have_count(0)
    waiting = app.page.get_by_role("region", name="Awaiting your reply")
    expect(waiting.get_by_role("link", name="Updated quote please")).to_be_visible()
    expect(waiting).to_contain_text("waiting 3 days")
    expect(waiting.get_by_text("Weekly offers")).to_have_count(0)
    news = app.page.get_by_role("region", name="Deals with news")
    expect(news.get_by_role("link", name="Lee renewal")).to_be_visible()
    expect(app.page.get_by_text("Connect your mailbox")).to_have_count(0)
    app.shot("home-day")
    waiting.get_by_role("link", name="Updated quote please").click()
    app.page.wait_for_url("**/messages/*/")
    assert not app.page.js_errors
