"""Departed users in a real browser: an administrator finds a deactivated user and downloads
the backup of their mail (SPEC F12)."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crmail.mail.models import WaitingBody
from crmail.web.tests.mail_samples import deliver, text_message
from tests import factories as f

pytestmark = pytest.mark.browser


def test_an_admin_opens_departed_users_and_downloads_a_mail_backup(app, tmp_path: Path):
    f.user("admin@crmail.test", name="Ada Admin", role_name="CEO", admin=True)
    leaver = f.user("leaver@crmail.test", name="Lee Leaver")
    deliver(leaver, text_message("Hello Lee\nFrom Monday on, new prices.\n", subject="Prices"))
    farewell = deliver(leaver, text_message("See you", subject="Farewell"))
    # It arrived while the storage was full: crmail keeps its header section only.
    WaitingBody.objects.create(message=farewell, headers=b"Subject: Farewell\r\n\r\n")
    app.sign_in("admin@crmail.test", f.PASSWORD)
    page = app.page

    app.go("/settings/users/")
    expect(page.locator("main").get_by_role("link", name="Departed users")).to_have_count(0)
    row = page.locator("table.records tbody tr", has_text="Lee Leaver")
    row.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("status")).to_contain_text("Lee Leaver was deactivated.")
    app.shot("users-with-departed")
    page.locator("main").get_by_role("link", name="Departed users").click()

    expect(page.get_by_role("heading", name="Departed users")).to_be_visible()
    admin_menu = app.admin_menu()
    expect(admin_menu.get_by_role("link", name="Departed users")).to_have_attribute(
        "aria-current", "page"
    )
    page.keyboard.press("Escape")  # a menu closes with Escape…
    expect(admin_menu).to_be_hidden()
    admin_menu = app.admin_menu()
    expect(admin_menu).to_be_visible()
    page.locator("main p").first.click()  # …and with a click anywhere else
    expect(admin_menu).to_be_hidden()
    expect(page.locator("main")).to_contain_text(
        "Without a backup, a deactivated user's synced mail no longer shows on records; "
        "reactivating the user brings it back."
    )
    row = page.locator("table.records tbody tr", has_text="Lee Leaver")
    expect(row.locator('td[data-label="Messages"]')).to_have_text("2 (1 without the body)")
    expect(row.locator('td[data-label="Hidden from colleagues"]')).to_have_text("2")
    app.shot("departed-users")

    with page.expect_download() as download:
        row.get_by_role("link", name="Download mail backup (.mbox) of Lee Leaver").click()
    assert download.value.suggested_filename == "leaver@crmail.test-mail.mbox"
    saved = tmp_path / "backup.mbox"
    download.value.save_as(saved)
    box = mailbox.mbox(saved, create=False)
    assert sorted(box[key]["Subject"] for key in box.iterkeys()) == ["Farewell", "Prices"]
    waiting = [box[key] for key in box.iterkeys() if box[key]["X-Crmail-Body-Waiting"]]
    assert [m["Subject"] for m in waiting] == ["Farewell"]

    row.get_by_role("link", name="Reactivate Lee Leaver").click()
    expect(page.get_by_role("heading", name="Edit Lee Leaver")).to_be_visible()
    assert page.js_errors == []
