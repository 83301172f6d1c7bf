"""Tags in real Chromium: a message tagged on its page, the inbox filtered by the tag, the
tag on the contact's Emails list and in search, and taken off again."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crmail.mail import tags
from crmail.search.tests.mail import deliver, raw
from crmail.sharing.tests import build
from tests import factories as f

pytestmark = pytest.mark.browser


def test_tag_a_message_then_filter_the_inbox_the_emails_list_and_search_by_it(app):  # type: ignore[no-untyped-def]
    rep = f.user("rep@crmail.test", name="Rex Rep")
    box = build.mailbox(rep)
    ann = f.contact(rep, "ann@client.example", first_name="Ann", last_name="Lee")
    quote = deliver(
        None,
        raw("Ann Lee <ann@client.example>", rep.email, "Quote for 12 vans", "Our price, please."),
        to=[box],
        on=[ann],
    )
    deliver(
        None,
        raw("Ann Lee <ann@client.example>", rep.email, "Lunch on Friday", "See you there."),
        to=[box],
        on=[ann],
    )
    page = app.page
    app.sign_in(rep.email, f.PASSWORD)
    app.go(f"/messages/{quote.pk}/")

    section = page.get_by_role("region", name="Tags")
    expect(section).to_contain_text("No tags yet.")
    section.get_by_label("Add a tag").fill("Quote")
    section.get_by_role("button", name="Add").click()
    expect(section.get_by_role("status")).to_have_text("Tagged “Quote”.")
    expect(section.get_by_role("link", name="Quote")).to_be_visible()
    section.get_by_label("Add a tag").fill("quote ")  # the same tag, in another case
    section.get_by_role("button", name="Add").click()
    expect(section.get_by_role("status")).to_have_text("It is tagged “Quote” already.")
    section.get_by_label("Add a tag").fill("   ")
    section.get_by_role("button", name="Add").click()
    expect(section.get_by_role("alert")).to_have_text("A tag needs a name.")
    app.shot("tags-message")
    assert tags.tags_of([quote.pk]) == {quote.pk: ["Quote"]}

    app.go("/inbox/")
    rows = page.locator(".inbox-row")
    expect(rows).to_have_count(2)
    tagged_row = page.locator(".inbox-row", has_text="Quote for 12 vans")
    tagged_row.get_by_role("link", name="Quote", exact=True).click()
    page.wait_for_url(re.compile(r"/inbox/\?tag=Quote$"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Quote for 12 vans")
    expect(page.get_by_role("heading", level=1)).to_contain_text("1 conversation tagged “Quote”")
    app.shot("tags-inbox-filtered")
    page.get_by_role("status").get_by_role("link", name="Show all").click()
    expect(rows).to_have_count(2)

    app.go(f"/contacts/{ann.pk}/")
    emails = page.get_by_role("region", name=re.compile("^Emails"))
    expect(emails.locator(".email-row")).to_have_count(2)
    emails.get_by_role("link", name="Quote", exact=True).click()
    expect(emails.locator(".email-row")).to_have_count(1)
    expect(emails).to_contain_text("Only mail tagged")
    app.shot("tags-emails-filtered")

    app.go("/search/?q=tag%3Aquote")
    mail = page.get_by_role("region", name=re.compile("^Mail"))
    expect(mail.get_by_role("link", name="Quote for 12 vans")).to_be_visible()
    expect(mail).not_to_contain_text("Lunch on Friday")

    app.go(f"/messages/{quote.pk}/")
    section = page.get_by_role("region", name="Tags")
    section.get_by_role("button", name="Remove the tag Quote").click()
    expect(section.get_by_role("status")).to_have_text("Took “Quote” off.")
    expect(section).to_contain_text("No tags yet.")
    assert tags.tags_of([quote.pk]) == {}
    assert not page.js_errors
