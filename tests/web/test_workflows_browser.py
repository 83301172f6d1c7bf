"""The workflow editor in real Chromium: a rule built row by row (fields and actions
chosen, a condition added and removed), tried on past mail with the result in the page,
saved, switched off from the list, its log opened."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from crmail.workflows.models import Workflow
from crmail.workflows.tests import build
from tests import factories as f

pytestmark = pytest.mark.browser


def redrawn(page, act) -> None:  # type: ignore[no-untyped-def]
    """Do ``act`` (which posts the editor) and wait until the editor is drawn again and
    htmx has wired its new controls up (they answer only once the swap settles)."""
    editor = page.locator("#workflow-editor")
    before = editor.get_attribute("data-render")
    act()
    expect(editor).not_to_have_attribute("data-render", before or "")
    expect(page.locator(".htmx-settling, .htmx-request, .htmx-swapping")).to_have_count(0)


def test_a_user_builds_tries_and_saves_a_rule(app):  # type: ignore[no-untyped-def]
    rep = f.user("rep@crmail.test", name="Rex Rep")
    account = f.account(rep, "Acme")
    f.contact(rep, "jane@acme.test", account=account, first_name="Jane", last_name="Quinn")
    f.deal(rep, "Acme renewal", account=account, amount=Decimal("5000"))
    box = build.mailbox(rep)
    build.deliver(
        box, build.raw("Jane Quinn <jane@acme.test>", subject="May invoice", body="Our invoice")
    )
    build.deliver(box, build.raw("jane@acme.test", subject="Lunch", body="Soup?"))
    build.deliver(box, build.raw("shop@else.test", subject="Your invoice", body="invoice"))

    app.sign_in(rep.email, f.PASSWORD)
    app.my_menu().get_by_role("link", name="Workflows").click()
    app.page.wait_for_url("**/settings/workflows/")
    expect(app.page.get_by_text("No rules yet.")).to_be_visible()
    app.page.get_by_role("link", name="New rule").click()

    page = app.page
    page.get_by_label("Name").fill("Invoices to the deal")
    redrawn(
        page,
        lambda: page.get_by_label("What condition 1 looks at").select_option(
            label="Text of the message"
        ),
    )
    expect(page.get_by_label("How condition 1 compares")).not_to_contain_text("starts with")
    page.get_by_label("The value of condition 1").fill("invoice")

    redrawn(page, lambda: page.get_by_role("button", name="Add a condition").click())
    redrawn(
        page,
        lambda: page.get_by_label("What condition 2 looks at").select_option(
            label="A field of its record"
        ),
    )
    page.get_by_label("How condition 2 compares").select_option(label="is")
    redrawn(
        page,
        lambda: page.get_by_label("The record field of condition 2").select_option(
            label="Deal: Status"
        ),
    )
    page.get_by_label("The value of condition 2").fill("open")
    redrawn(page, lambda: page.get_by_role("button", name="Add a condition").click())
    expect(page.get_by_label("What condition 3 looks at")).to_be_visible()
    redrawn(page, lambda: page.get_by_role("button", name="Remove condition 3").click())
    expect(page.get_by_label("What condition 3 looks at")).to_have_count(0)
    expect(page.get_by_label("The value of condition 1")).to_have_value("invoice")
    expect(page.get_by_label("How condition 2 compares")).to_have_value("is")

    redrawn(
        page,
        lambda: page.get_by_label("What action 1 does").select_option(
            label="Link it to the contact's open deal"
        ),
    )
    redrawn(page, lambda: page.get_by_role("button", name="Add an action").click())
    redrawn(
        page, lambda: page.get_by_label("What action 2 does").select_option(label="Notify people")
    )
    page.get_by_label("Whom").select_option(label="The mailbox's owner")
    page.get_by_label("Saying").fill("Invoice from a customer")
    redrawn(page, lambda: page.get_by_role("button", name="Add an action").click())
    page.get_by_label("Title").fill("Check the invoice")
    page.get_by_label("Due after (days)").fill("2")

    page.get_by_role("button", name="Try it on past mail").click()
    result = page.locator("#dry-run")
    expect(result).to_contain_text("Would have matched 1 of the last 3 messages")
    expect(result.locator("table")).to_contain_text("May invoice")
    expect(result.locator("table")).to_contain_text("Acme renewal")
    expect(result).not_to_contain_text("Lunch")
    expect(result).not_to_contain_text("Your invoice")  # no open deal: not a match
    app.shot("workflow-editor-dry-run")

    page.get_by_label("On: run it on new mail").check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/settings/workflows/")
    expect(page.get_by_text("Rule “Invoices to the deal” saved, on.")).to_be_visible()
    row = page.locator("table.workflows tbody tr").first
    expect(row).to_contain_text("Invoices to the deal")
    expect(row).to_contain_text(
        "Text of the message contains invoice and the deal's status is open"
    )
    app.shot("workflow-list")

    rule = Workflow.objects.get()
    assert rule.enabled and [a["kind"] for a in rule.spec["actions"]] == [
        "link_open_deal",
        "notify",
        "create_task",
    ]
    # New mail meets the rule: its run is in the log, action by action.
    build.deliver(box, build.raw("jane@acme.test", subject="June invoice", body="invoice"))
    page.reload()
    page.get_by_role("link", name="1 matched").click()
    run = page.locator("table.workflow-runs tbody tr").first
    expect(run).to_contain_text("June invoice")
    expect(run).to_contain_text("Done")
    expect(run).to_contain_text("Linked to the deal Acme renewal")
    expect(run).to_contain_text("Told Rex Rep.")
    expect(run).to_contain_text("Task “Check the invoice” on the deal Acme renewal, for Rex Rep")
    app.shot("workflow-runs")
    page.get_by_role("link", name="Workflows").first.click()
    row = page.locator("table.workflows tbody tr").first
    row.get_by_role("switch").click()
    expect(page.get_by_text("is off: it runs on nothing")).to_be_visible()
    rule.refresh_from_db()
    assert not rule.enabled
    expect(row).to_contain_text("Off")


def test_the_rule_editor_fits_a_phone(app):  # type: ignore[no-untyped-def]
    rep = f.user("rep@crmail.test", name="Rex Rep")
    app.page.set_viewport_size({"width": 360, "height": 740})
    app.sign_in(rep.email, f.PASSWORD)
    app.go("/settings/workflows/new/")
    action = app.page.locator(".rule-row").last  # an action's row: its selects are the widest
    expect(action).to_be_visible()
    assert app.page.evaluate("document.documentElement.scrollWidth") <= 360
    for select in action.locator("select").all():
        box = select.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 360
    app.shot("workflow-editor-phone")
