"""Connecting Gmail and Outlook through their APIs in a real browser: the connect page's
choice, Sign in with Google / Microsoft at the local authorization server (which sends the
browser straight back), and the mailbox page with the API chosen and no copy kept."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crmail.mailboxes.models import LiveMail, Mailbox
from crmail.mailboxes.tasks import run_sync
from crmail.mailboxes.tests.standins.gmail import GmailStandIn
from crmail.mailboxes.tests.standins.oauth import GOOGLE, GRAPH_RESOURCE, AuthServer, Issued
from tests import factories as f
from tests.database import every_value

pytestmark = pytest.mark.browser


@pytest.fixture
def graph(oauth_server: AuthServer, settings) -> Iterator[object]:
    from crmail.mailboxes.tests.standins.graph import serve

    with serve() as state:
        settings.CRMAIL_GRAPH_API_URL = state.base_url
        oauth_server.user = state.address

        def accept(issued: Issued) -> None:
            if issued.resource == GRAPH_RESOURCE:
                state.add_token(issued.token)

        oauth_server.on_issue.append(accept)
        yield state


@pytest.fixture
def gmail(oauth_server: AuthServer, settings) -> Iterator[object]:
    """The Gmail API stand-in, taking the tokens Google hands out."""
    with GmailStandIn("rep@gmail.test") as state:
        settings.CRMAIL_GMAIL_API_URL = state.url
        oauth_server.user = state.email

        def accept(issued: Issued) -> None:
            if issued.provider == GOOGLE:
                state.token(issued.token, issued.scopes)

        oauth_server.on_issue.append(accept)
        yield state


def connect_through_the_api(app, preset: str, api: str, email: str, provider: str) -> None:
    page = app.page
    app.sign_in(email, f.PASSWORD)
    app.go("/settings/mail/connect/")
    page.get_by_label("Provider").select_option(preset)
    app.settled()
    choice = page.locator("#provider-info")
    expect(choice).to_contain_text("IMAP: crmail keeps a copy of your mail")
    expect(page.get_by_label("Keep a copy of my mail in crmail")).to_be_hidden()
    page.get_by_role("radio", name=f"{api}: nothing of your mail is stored").check()
    expect(page.get_by_label("Keep a copy of my mail in crmail")).to_be_visible()
    expect(page.get_by_label("Keep a copy of my mail in crmail")).not_to_be_checked()
    expect(page.get_by_label("Password or app password")).to_be_hidden()
    page.get_by_label("Email address").fill(email)
    app.shot(f"mailbox-connect-{preset}-api")
    page.get_by_role("button", name=f"Sign in with {provider}").click()
    # To the provider's authorization page and straight back, then the mailbox's page.
    expect(page).to_have_url(re.compile(r"/settings/mail/\d+/(\?since=[0-9.]+)?$"))
    expect(page.locator("main")).to_contain_text(email)


def test_connect_outlook_through_microsoft_graph(app, oauth_server, graph):
    f.user(graph.address, name="Alice Rep")
    connect_through_the_api(app, "outlook", "Microsoft Graph", graph.address, "Microsoft")
    expect(app.page.locator("main")).to_contain_text("Microsoft Graph")
    app.shot("mailbox-graph-connected")
    mailbox = Mailbox.objects.get(email=graph.address)
    assert (mailbox.protocol, mailbox.keeps_copy, mailbox.access_token_resource) == (
        "graph",
        False,
        "api",
    )
    assert oauth_server.valid(mailbox.access_token, resource=GRAPH_RESOURCE) is not None
    assert app.page.js_errors == []


def test_connect_gmail_through_the_gmail_api(app, oauth_server, gmail):
    rep = f.user("rep@gmail.test", name="Rex Rep")
    jane = f.contact(rep, "jane@acme.test", first_name="Jane", last_name="Quinn")
    gmail.add_message(
        b"From: Jane Quinn <jane@acme.test>\r\nTo: rep@gmail.test\r\n"
        b"Subject: Renewal terms for July\r\nMessage-ID: <renewal@acme.test>\r\n"
        b"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\nThe confidential figures.\r\n",
        internal_date=timezone.now().timestamp(),
    )
    connect_through_the_api(app, "gmail", "Gmail API", "rep@gmail.test", "Google")
    expect(app.page.locator("main")).to_contain_text("Gmail API")
    app.shot("mailbox-gmail-connected")
    mailbox = Mailbox.objects.get(email="rep@gmail.test")
    assert (mailbox.protocol, mailbox.keeps_copy) == ("gmail", False)
    [asked] = oauth_server.authorize_requests
    assert asked["scope"].split() == [
        "https://www.googleapis.com/auth/gmail.modify",
        "https://www.googleapis.com/auth/gmail.labels",
    ]
    assert oauth_server.unexpected == []

    # Jane's mail shows on her record, asked from Gmail as the page is read...
    run_sync(mailbox)
    app.go(f"/contacts/{jane.pk}/")
    expect(app.page.get_by_text("Renewal terms for July")).to_be_visible()
    # Nobody's stored mail to choose by user: the list says so, not that there is no mail.
    expect(app.page.get_by_label("By user")).to_contain_text("No stored mail by user")
    app.shot("contact-live-gmail-mail")
    # ...and crmail keeps nothing of it but the Mail ID, From and received time.
    [kept] = LiveMail.objects.filter(mailbox=mailbox)
    assert kept.sender == "jane@acme.test" and kept.received_at is not None
    everything = every_value()
    assert "jane@acme.test" in everything  # the reading reaches the rows
    assert "Renewal terms" not in everything and "confidential figures" not in everything
    assert app.page.js_errors == []


def test_an_outlook_user_sees_live_mail_on_a_record_and_labels_follow_the_deal(
    app, oauth_server, graph
):
    # SPEC F1, F2 and F8 as an Outlook user meets them: sign in with Microsoft, the API
    # chosen (nothing of the mail stored), the customer's mail on her record, the labels
    # switched on, and the mail moving to "Deals Closing This Month" when the deal's date
    # changes on its page.
    from datetime import date

    from crmail.mailboxes.labels.categories import this_month
    from crmail.mailboxes.live import clear_cache
    from crmail.mailboxes.tests.test_graph import mail

    clear_cache()
    alice = f.user(graph.address, name="Alice Rep")
    _, last = this_month()
    cleo = f.contact(alice, "cleo@acme.test", first_name="Cleo", last_name="Park")
    deal = f.deal(alice, "Park renewal", contact=cleo, closing_date=date(last.year + 1, 2, 1))
    graph.deliver(
        mail(7, sender="cleo@acme.test").replace(b"Subject: Message 7", b"Subject: Renewal quote")
    )
    connect_through_the_api(app, "outlook", "Microsoft Graph", graph.address, "Microsoft")
    mailbox = Mailbox.objects.get(email=graph.address)
    run_sync(mailbox)  # as the worker does once the mailbox is connected

    page = app.page
    app.go(f"/contacts/{cleo.pk}/")
    expect(page.get_by_text("Renewal quote")).to_be_visible()
    app.shot("contact-live-outlook-mail")
    everything = every_value()
    assert "Renewal quote" not in everything and "Body 7" not in everything

    app.go(f"/settings/mail/{mailbox.pk}/")
    card = page.locator("#labels")
    card.get_by_label("Sort mail from contacts under labels by deal state").check()
    card.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text("Labels are on")
    rows = page.locator("#labels table.label-moves tbody tr")
    expect(rows.filter(has_text="cleo@acme.test")).to_contain_text("Inbox → Open Deals")
    # Outlook files what crmail sends in its own Sent Items: no Sent folder to ask for.
    expect(page.get_by_text("This server has no Sent folder")).to_have_count(0)
    assert [m.folder for m in graph.messages.values()] == [graph.folder_id("Open Deals")]

    app.go(f"/deals/{deal.pk}/edit/")
    page.get_by_label("Closing date").fill(last.isoformat())
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("Park renewal")
    app.go(f"/settings/mail/{mailbox.pk}/")
    expect(rows.filter(has_text="cleo@acme.test").first).to_contain_text(
        "Open Deals → Deals Closing This Month"
    )
    app.shot("mailbox-outlook-labels-moved")
    assert [m.folder for m in graph.messages.values()] == [
        graph.folder_id("Deals Closing This Month")
    ]

    # Deactivating asks about the labels too; removed, the mail is back in the Inbox.
    page.get_by_role("link", name="Deactivate").click()
    expect(page.locator("main")).to_contain_text("crmail keeps no copy of this mailbox's mail")
    expect(page.get_by_role("radio", name=re.compile("^Keep the synced mail"))).to_have_count(0)
    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("alert")).to_contain_text("keep the three labels on the server")
    page.get_by_role("radio", name=re.compile("^Remove them from the server")).check()
    app.shot("mailbox-deactivate-labels")
    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("status")).to_contain_text("Its labels are being removed")
    assert [m.folder for m in graph.messages.values()] == [graph.folder_id("inbox")]
    deleted = graph.folder_id("deleteditems")
    assert graph.folders[graph.folder_id("Open Deals")].parent == deleted
    assert app.page.js_errors == []
    clear_cache()
