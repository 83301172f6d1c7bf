"""Customer mail alerts in real Chromium: the bell's badge on every page, the feed newest
first with the unread marked, a notification that arrives while the feed is open showing
without a reload (server-sent events), and "Mark all read"."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from crmail.mail.ingest import parse_stored
from crmail.mail.store import store_raw
from crmail.mailboxes.models import Folder, Location, Mailbox
from crmail.notifications.models import Notification
from crmail.notifications.tests.test_alerts import mail
from tests import factories as f

pytestmark = pytest.mark.browser


def inbox_of(user):  # type: ignore[no-untyped-def]
    box = Mailbox.objects.create(
        owner=user, email=user.email, host="127.0.0.1", port=9, login=user.email
    )
    return Folder.objects.create(mailbox=box, remote_id="INBOX", name="Inbox", role="inbox")


def arrives(folder: Folder, raw: bytes) -> None:
    """A message reaches the Inbox as a sync stores it; its parse commits and the outbox's
    consumers (linking, then alerts) run after that commit."""
    message = store_raw(raw)
    Location.objects.create(
        mailbox=folder.mailbox, folder=folder, message=message, remote_id=str(message.pk)
    )
    parse_stored([message])


def test_the_badge_and_the_live_feed(app):  # type: ignore[no-untyped-def]
    rep = f.user("rep@crmail.test", name="Rex Rep")
    f.contact(rep, "jane@acme.test", first_name="Jane", last_name="Quinn")
    f.lead(rep, "sam@prospect.test", first_name="Sam", last_name="Lee")
    folder = inbox_of(rep)
    arrives(folder, mail("Jane Quinn <jane@acme.test>", subject="Quote for May"))
    arrives(folder, mail("sam@prospect.test", subject="Interested in a demo"))
    assert Notification.objects.filter(user=rep).count() == 2

    app.sign_in(rep.email, f.PASSWORD)
    app.go("/contacts/")
    bell = app.page.get_by_role("link", name="Notifications, 2 unread")
    expect(bell.locator(".badge")).to_have_text("2")
    app.shot("alerts-badge")

    bell.click()
    app.page.wait_for_url("**/notifications/")
    titles = app.page.locator(".notification-title")
    expect(titles).to_have_text(
        [
            "New mail from Sam Lee (Lead): Interested in a demo",
            "New mail from Jane Quinn (Contact): Quote for May",
        ]
    )
    expect(app.page.locator(".notification.unread")).to_have_count(2)
    expect(app.page.get_by_role("button", name="Turn on desktop notifications")).to_be_visible()

    # Mail arrives while the page is open: it shows at the top without a reload.
    arrives(folder, mail("Jane Quinn <jane@acme.test>", subject="Signed order attached"))
    expect(titles.first).to_have_text(
        "New mail from Jane Quinn (Contact): Signed order attached", timeout=15_000
    )
    expect(app.page.locator("[data-unread-badge]")).to_have_text("3", timeout=15_000)
    expect(app.page.locator(".notification.unread")).to_have_count(3)
    expect(app.page.get_by_text("3 unread")).to_be_visible()
    newest = app.page.locator(".notification").first
    expect(newest.get_by_role("button", name="Mark read")).to_be_visible()
    app.shot("alerts-live-feed")

    app.page.get_by_role("button", name="Mark all read").click()
    app.page.wait_for_url("**/notifications/")
    expect(app.page.get_by_text("Marked 3 notifications read.")).to_be_visible()
    expect(app.page.locator(".notification.unread")).to_have_count(0)
    expect(app.page.locator("[data-unread-badge]")).to_be_hidden()
    expect(app.page.get_by_role("link", name="Notifications", exact=True)).to_be_visible()
    app.shot("alerts-all-read")

    titles.first.click()
    app.page.wait_for_url("**/messages/*/")
    expect(app.page.get_by_text("Signed order attached").first).to_be_visible()
    assert not app.page.js_errors


def test_a_colleagues_notifications_stay_theirs(app):  # type: ignore[no-untyped-def]
    rep = f.user("rep@crmail.test", name="Rex Rep")
    peer = f.user("peer@crmail.test", name="Pia Peer")
    f.contact(rep, "jane@acme.test", first_name="Jane", last_name="Quinn")
    arrives(inbox_of(rep), mail("jane@acme.test", subject="For Rex only"))
    (row,) = Notification.objects.all()

    app.sign_in(peer.email, f.PASSWORD)
    app.go("/notifications/")
    expect(app.page.get_by_text("Nothing yet.")).to_be_visible()
    expect(app.page.locator("[data-unread-badge]")).to_be_hidden()
    expect(app.page.get_by_text("For Rex only")).to_have_count(0)
    app.shot("alerts-empty-feed")
    assert app.go(f"/notifications/{row.pk}/").status == 404


def test_the_mailbox_switch_and_the_daily_digest_are_chosen_on_their_pages(app):  # type: ignore[no-untyped-def]
    rep = f.user("rep@crmail.test", name="Rex Rep")
    box = inbox_of(rep).mailbox

    app.sign_in(rep.email, f.PASSWORD)
    app.go(f"/settings/mail/{box.pk}/edit/")
    switch = app.page.get_by_label("Tell me at once when a lead or contact writes")
    expect(switch).to_be_checked()
    switch.uncheck()
    app.shot("alerts-mailbox-edit")
    app.page.get_by_role("button", name="Save").click()
    app.page.wait_for_url(f"**/settings/mail/{box.pk}/")
    expect(app.page.get_by_text("Customer mail alerts")).to_be_visible()
    box.refresh_from_db()
    assert box.customer_alerts is False

    app.go("/account/")
    digest = app.page.get_by_label("Send me a daily mail of unread customer mail")
    expect(digest).not_to_be_checked()
    digest.check()
    app.page.locator("#digest").get_by_role("button", name="Save this choice").click()
    expect(
        app.page.get_by_text("You will get a daily mail of unread customer mail")
    ).to_be_visible()
    expect(app.page.get_by_label("Send me a daily mail of unread customer mail")).to_be_checked()
    app.shot("alerts-account-digest")
    assert not app.page.js_errors
