"""Tasks in real Chromium: added on a contact's page, ticked there and on the home page,
where a rep's open tasks wait, overdue first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crmail.crm import task_actions
from crmail.crm.models import Task
from tests import factories as f

pytestmark = pytest.mark.browser


def test_add_a_task_on_a_contact_tick_it_and_find_it_on_the_home_page(app):  # type: ignore[no-untyped-def]
    org = f.org()
    rep = org.rep
    ann = f.contact(rep, "ann@client.example", first_name="Ann", last_name="Lee")
    deal = f.deal(rep, "Lee renewal", contact=ann)
    today = timezone.localdate()
    task_actions.create_task(
        actor=rep,
        module="deals",
        record_id=deal.pk,
        title="Chase the signed order",
        due=today - timedelta(days=2),
        owner=rep,
    )
    page = app.page
    app.sign_in(rep.email, f.PASSWORD)
    app.go(f"/contacts/{ann.pk}/")

    card = page.get_by_role("region", name="Tasks")
    expect(card).to_contain_text("Nothing to do on this contact.")
    card.get_by_text("Add a task").click()
    card.get_by_label("What is to be done").fill("Call Ann about the fleet")
    card.get_by_label("Due").fill((today + timedelta(days=3)).isoformat())
    expect(card.get_by_label("For")).to_have_value(str(rep.pk))  # me, unless chosen
    card.get_by_label("Notes").fill("She asked for 12 vans.")
    card.get_by_role("button", name="Add task").click()
    added = card.get_by_role("checkbox", name="Call Ann about the fleet")
    expect(added).to_be_visible()
    expect(card).to_contain_text("She asked for 12 vans.")
    expect(card.get_by_role("heading")).to_have_text("Tasks (1 open)")
    task = Task.objects.get(title="Call Ann about the fleet")
    assert (task.module, task.record_id, task.owner_id) == ("contacts", ann.pk, rep.pk)
    app.shot("tasks-record")

    # An empty title is refused on the card, in words, and nothing is added.
    card.get_by_text("Add a task").click()
    card.get_by_label("What is to be done").fill("   ")
    card.get_by_role("button", name="Add task").click()
    expect(card.locator(".error")).to_contain_text("required")
    assert Task.objects.count() == 2

    app.go("/")
    mine = page.get_by_role("region", name="My open tasks")
    expect(mine.get_by_role("heading")).to_have_text("My open tasks (2)")
    items = mine.locator(".task")
    expect(items.nth(0)).to_contain_text("Chase the signed order")
    expect(items.nth(0)).to_contain_text("overdue")
    expect(items.nth(0).get_by_role("link", name="Lee renewal")).to_be_visible()
    expect(items.nth(1)).to_contain_text("Call Ann about the fleet")
    expect(items.nth(1).get_by_role("link", name="Ann Lee")).to_be_visible()
    app.shot("tasks-home")

    mine.get_by_role("checkbox", name="Chase the signed order").check()
    expect(mine.get_by_role("heading")).to_have_text("My open tasks (1)")
    expect(mine).not_to_contain_text("Chase the signed order")
    assert Task.objects.get(title="Chase the signed order").done

    mine.get_by_role("link", name="Ann Lee").click()
    page.wait_for_url(f"**/contacts/{ann.pk}/")
    card = page.get_by_role("region", name="Tasks")
    card.get_by_role("checkbox", name="Call Ann about the fleet").check()
    expect(card.get_by_role("heading")).to_have_text("Tasks (0 open)")
    card.get_by_text("Done (1)").click()
    expect(card.get_by_role("checkbox", name="Done: Call Ann about the fleet")).to_be_checked()
    app.shot("tasks-record-done")
    assert Task.objects.get(title="Call Ann about the fleet").done
    assert not page.js_errors


def test_edit_a_task_give_it_to_a_colleague_and_delete_it(app):  # type: ignore[no-untyped-def]
    org = f.org()
    rep, manager = org.rep, org.manager
    account = f.account(rep, "Lee Logistics")
    task = task_actions.create_task(
        actor=rep,
        module="accounts",
        record_id=account.pk,
        title="Send the contract",
        due=timezone.localdate(),
        owner=rep,
    )
    page = app.page
    app.sign_in(rep.email, f.PASSWORD)
    app.go(f"/accounts/{account.pk}/")
    page.get_by_role("region", name="Tasks").get_by_role(
        "link", name="Edit “Send the contract”"
    ).click()
    page.wait_for_url(f"**/tasks/{task.pk}/")
    page.get_by_label("What is to be done").fill("Send the signed contract")
    page.get_by_label("For").select_option(label="Mia Manager")
    app.shot("tasks-edit")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**/accounts/{account.pk}/*")
    expect(page.get_by_role("status")).to_contain_text("Task “Send the signed contract” saved.")
    expect(page.get_by_role("region", name="Tasks")).to_contain_text("Mia Manager")
    task.refresh_from_db()
    assert task.owner == manager and task.title == "Send the signed contract"

    app.go(f"/tasks/{task.pk}/")
    page.get_by_role("button", name="Delete this task").click()
    page.wait_for_url(f"**/accounts/{account.pk}/*")
    expect(page.get_by_role("status")).to_contain_text("deleted")
    assert not Task.objects.exists()
    assert not page.js_errors
