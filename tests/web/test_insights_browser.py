"""Email insights in a real browser: a contact's best-time heatmap, the composer saying
tracking is on and offering the best time, a sent message's opens and clicks, and a
scheduled email cancelled from its list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from crmail.insights.models import Click, InsightsSetting, Open
from crmail.insights.tracking import Tracker
from crmail.mail.compose import Draft
from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.sending import send_message
from tests import factories as f

pytestmark = pytest.mark.browser


def test_the_best_time_heatmap_and_tracked_mail(app, settings, smtp_sink):
    settings.CRMAIL_PUBLIC_URL = "https://crm.example.com"
    InsightsSetting.objects.create(tracking=True)
    rep = f.user("rep@crmail.test", name="Rex Rep")
    mailbox = Mailbox.objects.create(
        owner=rep,
        email="rep@crmail.test",
        protocol="imap",
        host="127.0.0.1",
        port=9,
        security="none",
        login="rep",
        secret="x",
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_security="none",
        smtp_same_credentials=False,
        store_sent_on_server=False,
    )
    ann = f.contact(rep, "ann@acme.example", first_name="Ann", last_name="Lee")
    ann.time_zone = "Europe/Paris"
    ann.save(update_fields=["time_zone"])
    draft = Draft(
        sender="rep@crmail.test",
        to=["ann@acme.example"],
        subject="Renewal terms",
        text="The terms: https://acme.example/terms",
    )
    sent = send_message(
        rep,
        draft,
        mailbox=mailbox,
        record_module="contacts",
        record_id=ann.pk,
        tracking=Tracker(track=True),
    )
    smtp_sink.wait_for(1, 5)
    # Ann reads her mail on Tuesday and Wednesday mornings, now and then after lunch.
    monday = datetime(2026, 2, 2, tzinfo=UTC)
    pattern = [(1, 8, 6), (1, 9, 3), (2, 8, 4), (2, 7, 2), (3, 13, 2), (0, 16, 1), (4, 12, 1)]
    for day, hour, times in pattern:  # UTC hours: Paris is one ahead in February
        for week in range(times):
            at = monday + timedelta(weeks=week, days=day, hours=hour, minutes=10)
            Open.objects.create(sent=sent, at=at, client="desktop")
    Open.objects.create(
        sent=sent,
        at=monday + timedelta(hours=3),
        client="automated",
        scanner=True,
        scanner_reason="a mail-security scanner (Mimecast)",
    )
    Click.objects.create(
        sent=sent,
        at=monday + timedelta(days=1, hours=8, minutes=12),
        client="desktop",
        link=0,
        url="https://acme.example/terms",
    )

    page = app.page
    app.sign_in("rep@crmail.test", f.PASSWORD)
    app.go(f"/contacts/{ann.pk}/")
    card = page.locator("#best-time")
    expect(card).to_contain_text("Tuesdays, 09:00 to 10:00 (Europe/Paris)")
    expect(card).to_contain_text("the contact's time zone")
    expect(card.locator("td.best")).to_have_count(1)
    expect(card.locator("td.best")).to_have_attribute("title", "Tuesday 09:00: 6")
    expect(card.locator("td.heat-4")).to_have_count(1)
    expect(card.locator("td[class^=heat-]")).to_have_count(7 * 24)
    expect(page.locator(".email-insight")).to_contain_text("Opened 19 times · 1 click")
    card.scroll_into_view_if_needed()
    app.shot("insights-contact-heatmap")

    page.get_by_role("link", name="Renewal terms").first.click()
    insights = page.locator("#insights")
    insights.locator("summary").click()
    expect(insights).to_contain_text("Opened 19 times · 1 click")
    expect(insights).to_contain_text("Opened (probably by a scanner)")
    expect(insights).to_contain_text("Mimecast")
    app.shot("insights-message-opens")

    app.go(f"/contacts/{ann.pk}/email/")
    expect(page.locator(".tracking-note")).to_contain_text("Email tracking is on")
    expect(page.get_by_label("Don't track this message")).not_to_be_checked()
    expect(page.locator(".best-time-hint")).to_contain_text("Best time for Ann Lee: Tuesdays")
    page.get_by_label("Subject").fill("Next steps")
    app.shot("insights-composer")
    page.get_by_role("button", name="Send at the best time").click()
    expect(page.locator(".flash")).to_contain_text("will be sent at Ann Lee's best time")
    app.shot("insights-composer-scheduled")

    app.go("/scheduled/")
    row = page.locator("table.scheduled tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Next steps")
    expect(row).to_contain_text("Ann Lee's best time")
    app.shot("insights-scheduled")
    row.get_by_role("button", name="Cancel").click()
    expect(page.locator(".flash")).to_contain_text("was cancelled")
    expect(page.locator("table.scheduled tbody tr")).to_contain_text("Cancelled")
    assert not page.js_errors
    assert len(smtp_sink.wait_for(1, 1)) == 1  # nothing more was sent
