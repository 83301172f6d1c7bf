"""The Reports page (SPEC F17): each viewer's own figures, the chart drawn on the server,
and the CSV and XLSX of what it shows."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook

from crmail.reports.tests import world as w

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(org, settings) -> w.World:  # type: ignore[no-untyped-def]
    settings.TIME_ZONE = w.TIME_ZONE
    return w.build(org)


def cells(html: str) -> list[list[str]]:
    body = html.split('<table class="records report-table">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
        for r in rows
    ]


def test_the_top_bar_leads_to_reports(client_for, world):
    page = client_for(world.users["claire"]).get("/").content.decode()
    assert 'href="/reports/"' in page and ">Reports</a>" in page


@pytest.mark.parametrize("viewer", ["karl", "claire", "olga"])  # manager, peer, outsider
def test_each_viewer_sees_the_counts_of_the_mail_they_may_open(client_for, world, viewer):
    answer = client_for(world.users[viewer]).get("/reports/", {"group_by": "source"})
    assert answer.status_code == 200
    html = answer.content.decode()
    labels = {"imap": "IMAP", "pop3": "POP3", "graph": "Microsoft Graph"}
    labels |= {"crmail": "Sent from crmail", "dropbox": "BCC Dropbox"}
    want = {
        labels[k]: [str(i), str(o), str(i + o)]
        for k, (i, o) in w.expected(world, viewer, "source").items()
    }
    assert {row[0]: row[1:] for row in cells(html)} == want
    seen = sum(1 for spec in w.SPECS if w.seen_by(spec, viewer))
    assert f"<strong>{seen}</strong> message" in html


def test_the_volume_chart_is_svg_drawn_on_the_server(client_for, world):
    html = client_for(world.users["mark"]).get("/reports/").content.decode()
    assert "Volume over time" in html
    chart = html.split('<figure class="report-chart">', 1)[1].split("</figure>", 1)[0]
    assert chart.count('<g class="bar">') == 3  # June, July, August
    assert "<title>July 2026: 3 (2 in, 1 out)</title>" in chart
    assert "<script" not in html.split("</head>", 1)[1]


def test_the_files_hold_what_the_page_shows(client_for, world):
    client = client_for(world.users["karl"])
    query = {"group_by": "stage", "after": "2026-06-01"}
    shown = cells(client.get("/reports/", query).content.decode())
    assert shown == [
        ["Standard: Qualification", "2", "0", "2"],
        ["Standard: Proposal/Price Quote", "1", "1", "2"],
    ]
    text = client.get("/reports/", {**query, "format": "csv"}).content.decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["stage", "label", "inbound", "outbound", "count"]
    assert [r[1:] for r in rows[1:]] == shown
    answer = client.get("/reports/", {**query, "format": "xlsx"})
    assert answer["Content-Disposition"] == 'attachment; filename="email-report-by-stage.xlsx"'
    sheet = load_workbook(io.BytesIO(answer.content)).worksheets[0]
    got = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert got[0] == ["stage", "label", "inbound", "outbound", "count"]
    assert [[str(v) for v in r[1:]] for r in got[1:]] == shown


def test_bad_choices_are_answered_in_words(client_for, world):
    client = client_for(world.users["karl"])
    html = client.get("/reports/", {"group_by": "owner"}).content.decode()
    assert "Select a valid choice" in html and "report-table" not in html
    html = client.get(
        "/reports/", {"group_by": "month", "after": "2026-08-01", "before": "2026-07-01"}
    ).content.decode()
    assert "The end of the period must come after its start." in html
    html = client.get("/reports/", {"group_by": "month", "after": "soon"}).content.decode()
    assert "Enter a valid date." in html


def test_signed_out_visitors_are_sent_to_sign_in(client):
    answer = client.get("/reports/")
    assert answer.status_code == 302 and "/sign-in/" in answer["Location"]


def test_unknown_tables_and_formats_show_the_page(client_for, world):
    client = client_for(world.users["karl"])
    for query in ({"table": "response-times"}, {"table": "nope", "format": "pdf"}):
        answer = client.get("/reports/", {"group_by": "user", **query})
        assert answer.status_code == 200 and "report-table" in answer.content.decode()
    answer = client.get("/reports/", {"group_by": "user", "table": "nope", "format": "csv"})
    assert answer.content.decode().startswith("user,label,inbound,outbound,count")


def test_a_link_without_its_grouping_shows_the_months_of_its_period(client_for, world):
    # A bookmark or a hand-made link such as /reports/?after=2026-07-01.
    client = client_for(world.users["mark"])
    html = client.get("/reports/", {"after": "2026-07-01"}).content.decode()
    assert "This field is required" not in html
    assert [row[0] for row in cells(html)] == ["July 2026", "August 2026"]
    assert 'value="2026-07-01"' in html
    answer = client.get("/reports/", {"after": "2026-07-01", "format": "csv"})
    assert answer.content.decode().startswith("month,label,inbound,outbound,count")
