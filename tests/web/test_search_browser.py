"""The top bar's search in real Chromium: typed on any page, it finds records and mail
together, the matching words marked, and never a colleague's private mail."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from crmail.search.tests.mail import deliver, raw
from crmail.sharing import actions
from tests import factories as f

pytestmark = pytest.mark.browser


def test_top_bar_search_finds_records_and_mail(app):  # type: ignore[no-untyped-def]
    rep = f.user("rep@crmail.test", name="Rex Rep")
    peer = f.user("peer@crmail.test", name="Pia Peer")
    jane = f.contact(rep, "jane@customer.test", first_name="Jane", last_name="Quinn")
    deliver(
        None,
        raw(
            "Jane Quinn <jane@customer.test>",
            rep.email,
            "Quinn renewal <2027>",
            "Hello Rex, the Quinn renewal is signed. See the attached order.",
            attachment="quinn-order.pdf",
        ),
        to=[rep],
        on=[jane],
    )
    actions.set_sharing(None, peer, mode="private")
    deliver(
        None,
        raw("jane@customer.test", peer.email, "Quinn private note", "quinn"),
        to=[peer],
        on=[jane],
    )

    app.sign_in(rep.email, f.PASSWORD)
    app.go("/contacts/")
    box = app.page.get_by_role("search").get_by_label("Search records and mail")
    box.fill("quinn")
    box.press("Enter")
    app.page.wait_for_url("**/search/?q=quinn")
    expect(app.page.get_by_role("link", name="Jane Quinn")).to_be_visible()
    subject = app.page.locator(".search-mail .email-subject")
    expect(subject).to_have_count(1)
    expect(subject).to_have_text("Quinn renewal <2027>")
    expect(subject.locator("mark")).to_have_text("Quinn")
    expect(app.page.get_by_text("Quinn private note")).to_have_count(0)
    expect(app.page.get_by_text("1 conversation")).to_be_visible()
    app.shot("search-top-bar")

    subject.click()
    app.page.wait_for_url("**/messages/*/**")
    assert not app.page.js_errors
