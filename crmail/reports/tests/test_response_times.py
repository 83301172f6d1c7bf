"""Response time (SPEC F17): the first reply to an inbound customer message, median and
90th percentile per user, over the mail each viewer may see; figures worked out by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmail.reports.queries import Filters
from crmail.reports.response_times import median, p90, response_times
from crmail.reports.tests import world as w

pytestmark = pytest.mark.django_db

T0, H = w.T0, w.H


@pytest.fixture
def world(org, settings) -> w.World:  # type: ignore[no-untyped-def]
    settings.TIME_ZONE = w.TIME_ZONE
    world = w.build(org)
    w.add_replies(world)
    return world


def figures(world: w.World, viewer: str, filters: Filters | None = None) -> dict:  # type: ignore[type-arg]
    got = response_times(world.users[viewer], filters)
    return {r.label: (r.replied, r.median, r.p90) for r in got.rows}


def test_each_viewer_gets_the_times_of_the_mail_they_may_see(world):
    # Karl manages Mark: Mark's two answers (2 h, 30 min), Pat's (4 h); not Claire's.
    assert figures(world, "karl") == {
        "Rex Rep": (2, 75 * timedelta(minutes=1), 2 * H),
        "Pat Pop": (1, 4 * H, 4 * H),
    }
    # Claire sees what Mark shares with her, and her own.
    assert figures(world, "claire") == {
        "Rex Rep": (2, 75 * timedelta(minutes=1), 2 * H),
        "Pia Peer": (1, H, H),
        "Pat Pop": (1, 4 * H, 4 * H),
    }
    # Olga sees Mark's replies sent from crmail but not the questions in his mailbox.
    assert figures(world, "olga") == {"Pat Pop": (1, 4 * H, 4 * H)}


def test_the_period_is_that_of_the_question(world):
    after = (T0 + 20 * H).date()
    assert figures(world, "karl", Filters(after=after)) == {
        "Rex Rep": (1, H / 2, H / 2),
        "Pat Pop": (1, 4 * H, 4 * H),
    }


def test_the_file_columns_are_in_seconds(world):
    got = response_times(world.users["karl"])
    assert got.columns == ["user", "label", "replied", "median_seconds", "p90_seconds"]
    assert [row[1:] for row in got.table()] == [
        ["Rex Rep", 2, 4500, 7200],
        ["Pat Pop", 1, 14400, 14400],
    ]


def test_median_and_nearest_rank_percentile():
    minutes = [timedelta(minutes=m) for m in (5, 1, 3, 10, 2, 8, 4, 6, 7, 9)]
    assert median(minutes) == timedelta(minutes=5.5)
    assert p90(minutes) == timedelta(minutes=9)
    assert p90(minutes[:1]) == median(minutes[:1]) == timedelta(minutes=5)


def test_the_api_gives_them_as_json_and_csv(world):
    from crmail.api.tests.conftest import ApiClient

    api = ApiClient(world.users["claire"])
    body = api.get("/reports/response-times").json()
    assert body["columns"] == ["user", "label", "replied", "median_seconds", "p90_seconds"]
    assert [row[1:] for row in body["rows"]] == [
        ["Pia Peer", 1, 3600, 3600],
        ["Rex Rep", 2, 4500, 7200],
        ["Pat Pop", 1, 14400, 14400],
    ]
    text = api.get("/reports/response-times", {"format": "csv", "source": "pop3"}).content
    assert text.decode().splitlines() == [
        "user,label,replied,median_seconds,p90_seconds",
        f"{world.users['pat'].pk},Pat Pop,1,14400,14400",
    ]
    bad = api.get("/reports/response-times", {"after": "2026-09-09", "before": "2026-09-01"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "before"


def test_the_page_shows_them_in_words_with_a_chart(world):
    from django.test import Client

    karl = Client()
    karl.force_login(world.users["karl"])
    html = karl.get("/reports/").content.decode()
    section = html.split('<section class="report-times"', 1)[1].split("</section>", 1)[0]
    assert '<td class="num" data-label="Median">1 h 15 min</td>' in section
    assert '<td class="num" data-label="90 % within">2 h 00 min</td>' in section
    assert "Pia Peer" not in section  # her private mail
    assert (
        "<title>Rex Rep: median 1 h 15 min, 90 % within 2 h 00 min (2 answered)</title>" in section
    )
    answer = karl.get("/reports/", {"group_by": "user", "table": "response-times", "format": "csv"})
    assert answer["Content-Disposition"] == 'attachment; filename="response-times.csv"'
    assert answer.content.decode().splitlines()[1].split(",")[1:] == [
        "Rex Rep",
        "2",
        "4500",
        "7200",
    ]


def test_response_times_in_words():
    from crmail.reports.charts import hours

    assert hours(timedelta(minutes=35)) == "35 min"
    assert hours(timedelta(hours=2, minutes=5)) == "2 h 05 min"
    assert hours(timedelta(days=3, hours=4, minutes=20)) == "3 days 4 h"
    assert hours(timedelta(days=1)) == "1 day 0 h"
