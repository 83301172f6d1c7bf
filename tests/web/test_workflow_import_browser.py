"""Importing Gmail filters in real Chromium: from Workflows, a user uploads the export, reads
the preview (the rules to be made, and each line that cannot be, with why), imports, and
finds the rules in their list, off."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from crmail.workflows.models import Workflow
from tests import factories as f

pytestmark = pytest.mark.browser

DATA = Path(__file__).parents[2] / "crmail" / "workflows" / "tests" / "data" / "filters"


def test_a_user_uploads_gmail_filters_previews_and_imports_them(app, tmp_path):  # type: ignore[no-untyped-def]
    rep = f.user("rep@crmail.test", name="Rex Rep")
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    app.sign_in(rep.email, f.PASSWORD)
    app.my_menu().get_by_role("link", name="Workflows").click()
    app.page.wait_for_url("**/settings/workflows/")
    app.page.get_by_role("link", name="Import filters").click()
    app.page.wait_for_url("**/settings/workflows/import/")

    app.page.get_by_label("Filters file").set_input_files(str(empty))
    app.page.get_by_role("button", name="Preview").click()
    expect(app.page.get_by_role("alert")).to_contain_text("The file is empty.")

    app.page.get_by_label("Filters file").set_input_files(str(DATA / "mailFilters.xml"))
    app.page.get_by_role("button", name="Preview").click()
    preview = app.page.locator("#import-preview")
    expect(preview.get_by_role("heading", level=2).first).to_have_text(
        "7 rules to import from Gmail's filters"
    )
    rule = app.page.locator(".import-rule", has_text="list:django-users@googlegroups.com")
    expect(rule).to_contain_text("A header List-Id contains “django-users.googlegroups.com”")
    expect(rule).to_contain_text("Move it to a folder: Lists/Django")
    expect(rule).to_contain_text("looked for in the List-Id header")
    skipped = app.page.locator(".import-skipped", has_text="to:(me)")
    expect(skipped.locator("tbody tr")).to_have_count(3)
    expect(skipped).to_contain_text("Gmail's 'Never send it to Spam' has no counterpart in crmail.")
    expect(skipped).to_contain_text("<apps:property name='shouldNeverSpam' value='true'/>")
    assert not Workflow.objects.exists()
    app.shot("workflow-import-preview")

    app.page.get_by_role("button", name="Import 7 rules").click()
    app.page.wait_for_url("**/settings/workflows/")
    expect(app.page.get_by_text("7 rules imported, off")).to_be_visible()
    table = app.page.locator("table.workflows")
    expect(table.locator("tbody tr")).to_have_count(7)
    expect(table).to_contain_text("Gmail filter from:(news@shop.example.com)")
    expect(table.get_by_role("switch", checked=False)).to_have_count(7)
    app.shot("workflow-import-done")
    assert Workflow.objects.filter(owner=rep, enabled=False).count() == 7
    assert not app.page.js_errors
