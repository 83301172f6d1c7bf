"""GET /api/v1/reports/emails (SPEC F17): JSON, CSV and XLSX, each viewer's own figures."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from crmail.api.tests.conftest import ApiClient
from crmail.reports.tests import world as w

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(org, settings) -> w.World:  # type: ignore[no-untyped-def]
    settings.TIME_ZONE = w.TIME_ZONE
    return w.build(org)


def as_counts(rows: list[list]) -> dict[str, tuple[int, int]]:  # type: ignore[type-arg]
    return {str(key): (inbound, outbound) for key, _label, inbound, outbound, _n in rows}


@pytest.mark.parametrize("viewer", ["karl", "claire", "olga"])  # manager, peer, outsider
def test_each_viewer_gets_the_figures_of_the_mail_they_may_see(world, viewer):
    api = ApiClient(world.users[viewer])
    for group_by in ("user", "source", "month", "record_type", "stage", "template"):
        answer = api.get("/reports/emails", {"group_by": group_by})
        assert answer.status_code == 200, answer.content
        body = answer.json()
        assert body["columns"] == [group_by, "label", "inbound", "outbound", "count"]
        got = {k: v for k, v in as_counts(body["rows"]).items() if sum(v)}
        assert got == w.expected(world, viewer, group_by), (viewer, group_by)
        assert all(row[4] == row[2] + row[3] for row in body["rows"])
    seen = [spec for spec in w.SPECS if w.seen_by(spec, viewer)]
    assert api.get("/reports/emails").json()["total"] == len(seen)


def test_filters_and_the_outsider_seeing_no_private_copy(world):
    api = ApiClient(world.users["olga"])
    body = api.get("/reports/emails", {"group_by": "source", "source": "imap"}).json()
    assert body["rows"] == [] and body["total"] == 0
    body = api.get(
        "/reports/emails", {"group_by": "month", "after": "2026-07-01", "before": "2026-08-01"}
    ).json()
    assert body["rows"] == [["2026-07", "July 2026", 2, 1, 3]]


def test_csv_opens_back_with_a_header_and_a_count_column(world):
    answer = ApiClient(world.users["karl"]).get(
        "/reports/emails", {"group_by": "source", "format": "csv"}
    )
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    assert "email-report-by-source.csv" in answer["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert rows[0] == ["source", "label", "inbound", "outbound", "count"]
    got = {r[0]: (int(r[2]), int(r[3])) for r in rows[1:]}
    assert got == w.expected(world, "karl", "source")


def test_xlsx_opens_back_with_numbers(world):
    answer = ApiClient(world.users["claire"]).get(
        "/reports/emails", {"group_by": "user", "format": "xlsx"}
    )
    assert answer.status_code == 200
    book = load_workbook(io.BytesIO(answer.content), read_only=True)
    rows = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    assert rows[0] == ["user", "label", "inbound", "outbound", "count"]
    assert as_counts(rows[1:]) == w.expected(world, "claire", "user")
    assert all(isinstance(r[4], int) for r in rows[1:])


def test_bad_input_is_answered_422_naming_the_field(world):
    api = ApiClient(world.users["karl"])
    cases = [
        ({"group_by": "owner"}, "group_by"),
        ({"source": "fax"}, "source"),
        ({"after": "yesterday"}, "after"),
        ({"format": "pdf"}, "format"),
        ({"after": "2026-08-01", "before": "2026-07-01"}, "before"),
    ]
    for params, field in cases:
        answer = api.get("/reports/emails", params)
        assert answer.status_code == 422, params
        detail = answer.json()["detail"]
        assert [e["field"] for e in detail] == [field], detail
        assert all(e["message"] for e in detail)


def test_a_report_needs_a_token():
    assert ApiClient().get("/reports/emails").status_code == 401


def test_a_name_that_looks_like_a_formula_is_not_one_in_the_files(world):
    world.users["pat"].name = "=HYPERLINK(1)"
    world.users["pat"].save(update_fields=["name"])
    api = ApiClient(world.users["olga"])
    text = api.get("/reports/emails", {"group_by": "user", "format": "csv"}).content.decode()
    assert "'=HYPERLINK(1)" in text and ",=HYPERLINK" not in text
