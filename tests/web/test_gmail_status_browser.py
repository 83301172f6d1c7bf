"""A Gmail API mailbox paused by Gmail's rate limit says so, in words, in a real browser."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from crmail.mailboxes.tasks import run_sync
from crmail.mailboxes.tests.standins.gmail import GmailStandIn
from crmail.mailboxes.tests.test_gmail import ME, gmail_mailbox, mail
from tests import factories as f

pytestmark = pytest.mark.browser


@pytest.fixture
def gmail(settings: Any) -> Any:
    with GmailStandIn(ME) as stand_in:
        stand_in.token("access-1")
        settings.CRMAIL_GMAIL_API_URL = stand_in.url
        yield stand_in


def test_a_rate_limited_sync_shows_when_it_carries_on(app, gmail, settings):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    for n in range(3):
        gmail.add_message(mail(n))
    gmail.fail(429, "userRateLimitExceeded", retry_after=2 * 3600, times=50, match="/messages")
    mailbox = gmail_mailbox(owner=rep)
    run_sync(mailbox)
    settings.HUEY.flush()
    page = app.page
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page.goto(f"{app.url}/settings/mail/")
    row = page.get_by_role("row").filter(has_text=ME)
    expect(row).to_contain_text("Paused at the provider's request")
    page.goto(f"{app.url}/settings/mail/{mailbox.pk}/")
    status = page.locator("#sync-status")
    expect(status).to_contain_text("Paused at the provider's request")
    expect(status.get_by_role("alert")).to_contain_text(
        "Gmail asks crmail to slow down (too many requests); crmail carries on in about 2 hours."
    )
    settings_panel = page.locator("dl.fields").last
    expect(settings_panel).to_contain_text("through the Gmail API")
    expect(settings_panel).to_contain_text("filed in Sent by the provider")
    app.shot("mailbox-gmail-rate-limited")
