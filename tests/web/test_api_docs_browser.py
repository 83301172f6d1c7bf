"""The API's interactive documentation at /api/v1/docs renders every operation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_api_docs_show_the_operations(app):
    page = app.page
    response = app.go("/api/v1/docs")
    assert response.status == 200
    # Swagger UI lays out the whole document (hundreds of operations) before its title
    # shows: seconds on a busy machine.
    title = page.locator(".swagger-ui .info .title")
    expect(title).to_contain_text("crmail API", timeout=30_000)
    backup = page.locator(".opblock-summary-path", has_text="/api/v1/users/{id}/mail-backup")
    expect(backup).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/contacts").first).to_be_visible()
    assert page.locator(".opblock").count() > 50
    expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
    backup.click()  # the mbox answer of the operation that once broke the document
    expect(page.locator(".opblock.is-open")).to_contain_text("application/mbox")
    app.shot("api-docs")
    assert not page.js_errors
