"""Email storage in a real browser (SPEC F11): the administrators' page with its figures,
the growth chart drawn on the server and the largest mailboxes; storage added; a message
whose body waits, and the notification that says so."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from crmail.mail.ingest import parse_stored
from crmail.mail.store import store_many
from crmail.mailboxes import quota
from crmail.mailboxes.models import Mailbox
from crmail.sharing.tests import build
from crmail.storage import history, thresholds
from crmail.storage.models import UsageDay
from tests import factories as f

pytestmark = pytest.mark.browser
KB = 1000


def mail(n: int, kb: int) -> bytes:
    return (
        f"From: Client {n} <client{n}@acme.example>\r\nTo: rep@crmail.test\r\n"
        f"Subject: Proposal {n}\r\nMessage-ID: <p{n}@acme.example>\r\n"
        f"Date: Mon, 02 Nov 2026 10:{n:02d}:00 +0000\r\n\r\nDear rep, " + "z" * (kb * KB)
    ).encode()


def test_the_storage_page_and_a_body_that_waits(app, settings):
    settings.STORAGE_BYTES_PER_LICENCE = 100 * KB
    settings.CRMAIL_STORAGE_EXTRA_GB = None
    quota.forget()
    f.user("admin@crmail.test", name="Ada Admin", admin=True)
    rep = f.user("rep@crmail.test", name="Rex Rep")
    peer = f.user("peer@crmail.test", name="Pia Peer")
    work = build.mailbox(rep, "rep@crmail.test")
    old = build.mailbox(rep, "rex.old@crmail.test", active=False)
    peers = build.mailbox(peer, "peer@crmail.test")
    stored = store_many([mail(n, kb) for n, kb in enumerate((60, 40, 35, 30, 25, 20))])
    for message, box in zip(stored, (work, work, old, peers, peers, work), strict=True):
        build.place(message, box)
    # Six weeks of figures behind today's, for the growth chart.
    today = history.today()
    for days, rep_kb, peer_kb in ((42, 40, 10), (35, 70, 20), (21, 110, 30), (7, 140, 45)):
        day = today - timedelta(days=days)
        UsageDay.objects.create(day=day, user=rep, messages=2, bytes=rep_kb * KB)
        UsageDay.objects.create(day=day, user=peer, messages=1, bytes=peer_kb * KB)
    thresholds.check()  # 210 kB of 300 kB: 70 %, no warning yet

    app.sign_in("admin@crmail.test", f.PASSWORD)
    page = app.page
    app.admin_menu().get_by_role("link", name="Email storage").click()
    expect(page.get_by_role("heading", name="Email storage", level=1)).to_be_visible()
    summary = page.locator("section.storage-summary")
    expect(summary).to_contain_text("211.0 kB used of 300.0 kB (70.3 %)")
    expect(summary).to_contain_text("for each of 3 active users")
    expect(page.locator(".storage-chart svg polyline")).to_have_count(1)
    expect(page.locator(".storage-chart svg")).to_contain_text("Quota 300.0 kB")
    users = page.locator("table.storage-users tbody tr")
    expect(users).to_have_count(3)
    expect(users.first).to_contain_text("Rex Rep")
    largest = page.locator("table.storage-mailboxes tbody tr")
    expect(largest.first).to_contain_text("rep@crmail.test")
    expect(largest.nth(1)).to_contain_text("peer@crmail.test")
    app.shot("storage-page")

    # Past 80 %: warned. Then full: new mail keeps its headers, its body waits.
    more = store_many([mail(10, 40)])
    build.place(more[0], peers)
    thresholds.check()
    (late,) = store_many([mail(11, 20)], room=0)  # arrived when there was no room
    build.place(late, work)
    parse_stored([late])
    settings.STORAGE_BYTES_PER_LICENCE = 80 * KB  # 240 kB: full
    quota.forget()
    thresholds.check()
    app.go("/settings/storage/")
    expect(page.locator(".alert")).to_contain_text("Storage is full")
    expect(page.locator(".alert")).to_contain_text("1 message waits for its body")
    app.shot("storage-page-full")

    page.get_by_label("Storage added (GB)").fill("-5")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field.has-error")).to_contain_text("Give 0 or more gigabytes")
    app.shot("storage-extra-refused")
    page.get_by_label("Storage added (GB)").fill("2")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("with 2 GB added")).to_be_visible()

    # The owner sees the message's headers, and why its body is not there.
    app.sign_out()
    app.sign_in("rep@crmail.test", f.PASSWORD)
    app.go("/notifications/")
    told = page.locator("li.notification").first
    expect(told).to_contain_text("1 message arrived without the body: email storage is full")
    app.shot("storage-owner-told")
    told.get_by_role("link").first.click()
    page.wait_for_url(f"**/messages/{late.pk}/")
    expect(page.get_by_role("heading", name="Proposal 11")).to_be_visible()
    expect(page.locator(".message-headers")).to_contain_text("client11@acme.example")
    note = page.locator(".body-waits")
    expect(note).to_contain_text("The body of this message waits on the mail server")
    expect(note.get_by_role("button", name="Fetch the whole message")).to_be_visible()
    app.shot("message-body-waits")
    note.get_by_role("button", name="Fetch the whole message").click()
    # The test mailbox has no server to ask: the reason is said in words.
    expect(page.get_by_text("The body could not be fetched: rep@crmail.test:")).to_be_visible()
    app.shot("message-body-fetch-refused")
    assert Mailbox.objects.count() == 3
