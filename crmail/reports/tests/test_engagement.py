"""Open and click rates over time (SPEC F17): tracked mail sent from crmail that each
viewer may see, scanners left out; figures worked out by hand."""

from __future__ import annotations

from datetime import datetime

import pytest

from crmail.reports.engagement import engagement
from crmail.reports.queries import BadReport, Filters
from crmail.reports.tests import world as w

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(org, settings) -> w.World:  # type: ignore[no-untyped-def]
    settings.TIME_ZONE = w.TIME_ZONE
    world = w.build(org)
    w.add_tracked(world)
    return world


def rows(
    world: w.World, viewer: str, period: str = "month", filters: Filters | None = None
) -> list:  # type: ignore[type-arg]
    return engagement(world.users[viewer], period, filters).table()


def test_rates_of_the_tracked_mail_each_viewer_may_see(world):
    assert rows(world, "karl") == [
        ["2026-07", "July 2026", 2, 1, 1, 50, 50],
        ["2026-08", "August 2026", 0, 0, 0, None, None],
        ["2026-09", "September 2026", 1, 1, 0, 100, 0],
    ]
    assert rows(world, "claire")[-1] == ["2026-09", "September 2026", 2, 1, 1, 50, 50]
    got = engagement(world.users["claire"], "month").rows[-1]
    assert got.both == 0  # her click came without an open


def test_periods_and_filters(world):
    weeks = rows(world, "olga", "week", Filters(after=datetime(2026, 9, 1).date()))
    assert weeks == [["2026-08-31", "Week of 2026-08-31", 1, 1, 0, 100, 0]]
    assert rows(world, "karl", "month", Filters(source="dropbox")) == []
    with pytest.raises(BadReport, match="Choose a period") as bad:
        engagement(world.users["karl"], "user")
    assert bad.value.field == "period"


def test_the_api_and_the_page_give_the_same_rates(world):
    import io

    from django.test import Client
    from openpyxl import load_workbook

    from crmail.api.tests.conftest import ApiClient

    api = ApiClient(world.users["karl"])
    body = api.get("/reports/open-click-rates").json()
    assert body["columns"] == [
        "month",
        "label",
        "tracked",
        "opened",
        "clicked",
        "open_rate",
        "click_rate",
    ]
    assert body["rows"][0] == ["2026-07", "July 2026", 2, 1, 1, 50, 50]
    bad = api.get("/reports/open-click-rates", {"period": "user"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "period"

    karl = Client()
    karl.force_login(world.users["karl"])
    html = karl.get("/reports/", {"group_by": "month"}).content.decode()
    section = html.split('aria-labelledby="report-rates-h"', 1)[1].split("</section>", 1)[0]
    assert '<td class="num" data-label="Open rate">50 %</td>' in section
    assert '<td class="num" data-label="Open rate">\u2013</td>' in section  # August: none tracked
    assert "<title>July 2026: opened 50 %, clicked 50 % of 2 tracked</title>" in section
    answer = karl.get(
        "/reports/", {"group_by": "week", "table": "open-click-rates", "format": "xlsx"}
    )
    assert (
        answer["Content-Disposition"] == 'attachment; filename="open-and-click-rates-by-week.xlsx"'
    )
    sheet = load_workbook(io.BytesIO(answer.content)).worksheets[0]
    got = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert got[0][0] == "week" and got[1][2:] == [2, 1, 1, 50, 50]
