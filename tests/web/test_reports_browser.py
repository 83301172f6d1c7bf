"""The Reports page in a real browser: the chart drawn on the server, the table, a new
grouping chosen in the form (htmx), a refusal in words, and the CSV download."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crmail.reports.tests import world as w
from tests import factories as f

pytestmark = pytest.mark.browser


def test_a_manager_reads_the_mail_report(app, settings):
    settings.TIME_ZONE = w.TIME_ZONE
    world = w.build(f.org())
    w.add_replies(world)
    w.add_tracked(world)
    page = app.page
    app.sign_in("manager@crmail.test", f.PASSWORD)
    page.get_by_role("navigation", name="Mail").get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Email reports")).to_be_visible()
    rates = page.locator("table.rates-table")
    expect(rates.get_by_role("row", name="July 2026")).to_contain_text("50 %")
    app.shot("reports-whole-page")
    page.get_by_label("Before", exact=True).fill("2026-09-01")
    page.get_by_role("button", name="Show").click()
    app.settled()
    expect(page.locator(".report-summary")).to_contain_text("9 messages: 4 inbound, 5 outbound")
    chart = page.get_by_role("img", name="Volume over time: a bar per row of the table below")
    expect(chart.locator("g.bar")).to_have_count(3)
    page.get_by_label("Before", exact=True).fill("")
    page.get_by_role("button", name="Show").click()
    app.settled()
    times = page.locator("table.response-table")
    expect(times.get_by_role("row", name="Rex Rep")).to_contain_text("1 h 15 min")
    app.shot("reports-by-month")

    page.get_by_label("Group by").select_option("user")
    page.get_by_role("button", name="Show").click()
    app.settled()
    table = page.locator("table.report-table").first
    expect(table).to_contain_text("Rex Rep")
    # Claire's dropbox message counts under her; her private mail does not.
    expect(table.get_by_role("row", name="Pia Peer")).to_have_text(
        re.compile(r"Pia Peer\s*0\s*1\s*1")
    )
    assert "group_by=user" in page.url
    expect(page.locator(".report-chart figcaption").first).to_contain_text("Messages by user")
    app.shot("reports-by-user")

    with page.expect_download() as download:
        page.locator(".report-summary").get_by_role("link", name="Download CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["user", "label", "inbound", "outbound", "count"]
    assert "Rex Rep" in [r[1] for r in rows[1:]]

    page.locator("summary", has_text="Save this report").click()
    page.get_by_label("Name").fill("Mail by user")
    page.get_by_label("Share with users").select_option(label="Pia Peer")
    page.get_by_label("Mail it to me").select_option("weekly")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("The report “Mail by user” was saved.")
    expect(page.get_by_role("navigation", name="Saved reports")).to_contain_text(
        "Mail by user mailed weekly"
    )
    assert "group_by=user" in page.url
    app.shot("reports-saved")

    page.get_by_label("On or after", exact=True).fill("2026-09-01")
    page.get_by_label("Before", exact=True).fill("2026-08-01")
    page.get_by_role("button", name="Show").click()
    app.settled()
    expect(page.get_by_role("alert")).to_contain_text(
        "The end of the period must come after its start."
    )
    app.shot("reports-refused")
    assert not page.js_errors
