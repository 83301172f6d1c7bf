"""Webhooks in real Chromium: an administrator adds one from the Administration menu, sees
its secret once, sends a test that the receiver verifies, and reads the delivery log, a
failed attempt with its answer and next try included."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from crmail.webhooks.tests.receiver import receiver
from tests import factories as f

pytestmark = pytest.mark.browser


def test_an_admin_adds_a_webhook_tests_it_and_reads_its_log(app):  # type: ignore[no-untyped-def]
    admin = f.user("admin@crmail.test", name="Ada Admin", admin=True)
    with receiver() as hook:
        app.sign_in(admin.email, f.PASSWORD)
        app.admin_menu().get_by_role("link", name="Webhooks").click()
        app.page.wait_for_url("**/settings/webhooks/")
        expect(app.page.get_by_text("No webhooks yet.")).to_be_visible()
        app.page.get_by_role("link", name="New webhook").click()

        app.page.get_by_label("URL").fill("ftp://nowhere.test/")
        app.page.get_by_role("button", name="Add webhook").click()
        expect(app.page.get_by_text("Only http:// and https:// URLs").first).to_be_visible()
        expect(app.page.get_by_text("Choose at least one kind of event.").first).to_be_visible()

        app.page.get_by_label("URL").fill(hook.url)
        app.page.get_by_label("message.linked").check()
        app.page.get_by_label("record.created").check()
        app.shot("webhook-form")
        app.page.get_by_role("button", name="Add webhook").click()
        secret = app.page.get_by_label("The signing secret").inner_text().strip()
        assert secret.startswith("whsec_")
        expect(app.page.get_by_role("button", name="Copy")).to_be_visible()
        app.shot("webhook-created")

        app.page.get_by_role("link", name="Open the webhook").click()
        expect(app.page.get_by_text(secret)).to_have_count(0)
        app.page.get_by_role("button", name="Send test").click()
        expect(app.page.get_by_text("Test sent (webhook.test)")).to_be_visible()
        row = app.page.locator("table.deliveries tbody tr").first
        expect(row).to_contain_text("webhook.test")
        expect(row).to_contain_text("Delivered")
        expect(row).to_contain_text("200")

        hook.script = [500]
        hook.answer_body = b'{"error": "database locked, try later"}'
        app.page.get_by_role("button", name="Send test").click()
        row = app.page.locator("table.deliveries tbody tr").first
        expect(row).to_contain_text("Failed, will retry")
        expect(row).to_contain_text("The endpoint answered 500.")
        expect(row).to_contain_text("database locked, try later")
        app.shot("webhook-log")

        assert [call.verified(secret)["type"] for call in hook.calls] == [
            "webhook.test",
            "webhook.test",
        ]
        app.page.get_by_role("link", name="Webhooks", exact=True).first.click()
        expect(app.page.locator("table.webhooks")).to_contain_text(hook.url)
    assert not app.page.js_errors
