"""A contact's Emails list in real Chromium: the list, its views, a thread, a message."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crmail.linking.models import Link
from crmail.linking.tests.record_mail import CUSTOMER, scene
from crmail.mail.models import Message
from crmail.sharing.tests.build import link
from crmail.web.tests.mail_samples import deliver, text_message
from tests import factories as f

pytestmark = pytest.mark.browser


def test_open_a_contact_see_its_emails_switch_view_and_open_a_message(app):
    s = scene(f.org())
    note = deliver(s.mark, text_message("See you on Monday at the fair.", subject="Fair"))
    link(note, s.jane)
    Message.objects.filter(pk=s.popped.pk).update(subject="Price list 2026")
    Message.objects.filter(pk=s.sent.pk).update(
        subject="Our offer", automated=True, list_id="offers.crmail.test"
    )
    Message.objects.filter(pk__in=[s.first.pk, s.reply.pk, s.claires.pk]).update(
        subject="Re: Spring order"
    )
    # As linking writes them for synced mail: the contact's address took part.
    Link.objects.exclude(message=s.sent).update(reason="address", address=CUSTOMER)
    Link.objects.filter(message=s.sent).update(reason="sent_from_record")
    page = app.page
    app.sign_in(s.claire.email, f.PASSWORD)
    app.go(f"/contacts/{s.jane.pk}/")

    emails = page.get_by_role("region", name=re.compile("^Emails"))
    expect(emails.get_by_role("heading", name="Emails (4 conversations)")).to_be_visible()
    rows = emails.locator(".email-list > .email-row")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("Price list 2026")
    why = rows.nth(0).locator(".email-why")
    expect(why.get_by_text("Linked through jane@customer.test")).to_be_hidden()
    why.get_by_text("Why is it here?").click()  # asked for, not shown on every row
    expect(why).to_contain_text("Linked through jane@customer.test, an address of this contact")
    expect(rows.nth(1)).to_contain_text("List")
    expect(rows.nth(2)).to_contain_text("3 messages in this conversation")
    rows.nth(2).get_by_text("3 messages in this conversation").click()
    thread = rows.nth(2).locator(".thread-messages .email-row")
    expect(thread).to_have_count(3)
    page.mouse.move(0, 0)
    app.shot("record-emails")

    emails.get_by_role("link", name="From POP mailboxes").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Price list 2026")
    expect(page).to_have_url(re.compile(r"view=pop"))
    emails.get_by_role("link", name="From IMAP mailboxes").click()
    expect(rows).to_have_count(2)
    expect(page).to_have_url(re.compile(r"view=imap"))
    app.settled()
    emails.get_by_label("By user").select_option(label=s.mark.name)
    expect(page).to_have_url(re.compile(rf"view=user&user={s.mark.pk}"))
    expect(rows).to_have_count(3)  # the thread (his two), his sent offer, the note
    expect(emails.get_by_role("link", name="From IMAP mailboxes")).not_to_have_class("active")
    page.mouse.move(0, 0)
    app.shot("record-emails-by-user")

    rows.get_by_role("link", name="Fair").click()
    expect(page.get_by_role("heading", name="Fair")).to_be_visible()
    body = page.frame_locator("iframe.message-frame")
    expect(body.locator("body")).to_contain_text("See you on Monday at the fair.")
    assert page.js_errors == []
