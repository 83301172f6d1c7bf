"""A contact's Emails list in real Chromium with a Gmail API mailbox that keeps no copy: its
mail is asked live from the local Gmail stand-in, shown beside the stored mail, and opens
through the safe display."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from crmail.mailboxes.live import clear_cache
from crmail.mailboxes.tests.standins.gmail import GmailStandIn
from crmail.people.models import ModuleDefault
from crmail.sharing.tests import build
from tests import factories as f

pytestmark = pytest.mark.browser

ME = "rex@gmail.test"
JANE = "jane@acme.io"


def test_a_contacts_emails_show_live_gmail_mail_and_open_it(app, settings):
    clear_cache()
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    rex = f.user("rex@crmail.test", name="Rex Rep")
    pia = f.user("pia@crmail.test", name="Pia Peer")
    jane = f.contact(rex, JANE, first_name="Jane", last_name="Quinn")
    stored = build.message(JANE, [pia.email], on=[jane], in_mailboxes=[pia])
    type(stored).objects.filter(pk=stored.pk).update(
        subject="Stored hello", date=datetime(2026, 6, 5, tzinfo=UTC)
    )
    with GmailStandIn(ME) as gmail:
        gmail.token("access-1")
        settings.CRMAIL_GMAIL_API_URL = gmail.url
        f.api_mailbox("gmail", ME, "access-1", owner=rex, keeps_copy=False)
        gmail.add_message(
            (
                f"From: Jane Quinn <{JANE}>\r\nTo: {ME}\r\nSubject: Quote for July\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                "<p>Could you send the <b>quote</b>?</p><script>document.title='x'</script>"
            ).encode(),
            internal_date=datetime(2026, 6, 20, 9, tzinfo=UTC).timestamp(),
        )
        page = app.page
        app.sign_in(pia.email, f.PASSWORD)
        app.go(f"/contacts/{jane.pk}/")

        emails = page.get_by_role("region", name=re.compile("^Emails"))
        expect(
            emails.get_by_role(
                "heading", name="Emails (1 stored conversation, and live mail from Gmail)"
            )
        ).to_be_visible()
        rows = emails.locator(".email-list > .email-row")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("Quote for July")
        expect(rows.nth(0)).to_contain_text("Live · Gmail")
        expect(rows.nth(0)).to_contain_text("Jane Quinn")
        expect(rows.nth(1)).to_contain_text("Stored hello")
        app.shot("live-mail-list")

        rows.nth(0).get_by_role("link", name="Quote for July").click()
        expect(page.get_by_role("heading", name="Quote for July")).to_be_visible()
        expect(page.get_by_text("Live from Gmail")).to_be_visible()
        expect(page.get_by_role("link", name="Quinn")).to_be_visible()  # the crumbs
        frame = page.frame_locator("iframe.message-frame")
        expect(frame.locator("b")).to_have_text("quote")
        expect(frame.locator("script")).to_have_count(0)
        app.shot("live-mail-message")
    clear_cache()
