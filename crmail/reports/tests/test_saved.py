"""Saved reports (SPEC F17): shared per user or role, opened with the opener's own figures,
deleted only by their owner, refused in words."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client

from crmail.reports import saved
from crmail.reports.models import SavedReport
from crmail.reports.queries import BadReport, Filters
from crmail.reports.tests import world as w

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(org, settings) -> w.World:  # type: ignore[no-untyped-def]
    settings.TIME_ZONE = w.TIME_ZONE
    return w.build(org)


def client(world: w.World, who: str) -> Client:
    c = Client()
    c.force_login(world.users[who])
    return c


def test_a_report_is_seen_by_its_owner_and_whom_it_is_shared_with(world):
    mark, claire, olga, karl = (world.users[k] for k in ("mark", "claire", "olga", "karl"))
    report = saved.save_report(
        karl, "July by source", "source", Filters(after=date(2026, 7, 1)), users=[olga]
    )
    by_role = saved.save_report(mark, "Reps' months", "month", Filters(), roles=[claire.role])
    assert set(saved.visible_to(karl)) == {report}
    assert set(saved.visible_to(olga)) == {report}
    assert set(saved.visible_to(claire)) == {by_role}  # her role: the reps'
    assert set(saved.visible_to(mark)) == {by_role}
    assert by_role not in saved.visible_to(olga)  # another branch's role


def test_saving_from_the_page_and_opening_it_counts_for_the_opener(world):
    karl, olga = client(world, "karl"), client(world, "olga")
    answer = karl.post(
        "/reports/save/",
        {
            "name": "By source",
            "group_by": "source",
            "after": "",
            "before": "",
            "source": "",
            "share_users": [world.users["olga"].pk],
        },
    )
    assert answer.status_code == 302 and answer["Location"].startswith("/reports/?")
    page = olga.get("/reports/").content.decode()
    assert "By source" in page and "shared by Mia Manager" in page
    link = answer["Location"]
    assert "group_by=source" in link
    olga_page = olga.get(link).content.decode()
    karl_page = karl.get(link).content.decode()
    assert "<strong>5</strong> messages" in olga_page  # what Olga may open
    assert "<strong>7</strong> messages" in karl_page  # what Karl may open
    assert 'aria-label="Delete the report By source"' not in olga_page


def test_only_the_owner_deletes_a_saved_report(world):
    report = saved.save_report(
        world.users["karl"], "Mine", "user", Filters(), users=[world.users["olga"]]
    )
    assert client(world, "olga").post(f"/reports/{report.pk}/delete/").status_code == 403
    assert client(world, "gil").post(f"/reports/{report.pk}/delete/").status_code == 404
    assert client(world, "karl").post(f"/reports/{report.pk}/delete/").status_code == 302
    assert not SavedReport.objects.exists()


def test_bad_names_and_reports_are_refused_in_words(world):
    karl = world.users["karl"]
    saved.save_report(karl, "Taken", "user", Filters())
    cases = [
        ("  ", "Give the report a name."),
        ("x" * 101, "at most 100 characters"),
        ("Taken", "You already have a report named “Taken”."),
    ]
    for name, words in cases:
        with pytest.raises(BadReport, match=words) as bad:
            saved.save_report(karl, name, "user", Filters())
        assert bad.value.field == "name"
    with pytest.raises(BadReport, match="after its start"):
        saved.save_report(karl, "Back", "user", Filters(date(2026, 2, 1), date(2026, 1, 1)))
    karl_client = client(world, "karl")
    answer = karl_client.post("/reports/save/", {"name": "", "group_by": "nope"})
    assert answer.status_code == 302
    page = karl_client.get(answer["Location"]).content.decode()
    assert "The report was not saved." in page and "Name: This field is required." in page


def test_the_api_lists_the_saved_reports_one_may_open(world):
    from crmail.api.tests.conftest import ApiClient

    karl, olga = world.users["karl"], world.users["olga"]
    mine = saved.save_report(
        karl,
        "Weekly by user",
        "user",
        Filters(after=date(2026, 6, 1)),
        users=[olga],
        schedule="weekly",
    )
    saved.save_report(
        world.users["mark"], "Reps only", "month", Filters(), roles=[world.users["claire"].role]
    )
    body = ApiClient(olga).get("/reports/saved").json()
    assert body["count"] == 1
    (item,) = body["items"]
    assert item["id"] == mine.pk and item["mine"] is False and item["schedule"] == "weekly"
    assert item["after"] == "2026-06-01" and item["source"] is None
    assert item["url"].endswith("/reports/?group_by=user&after=2026-06-01&before=&source=")
    assert ApiClient(karl).get("/reports/saved").json()["items"][0]["mine"] is True
    assert (
        ApiClient(world.users["claire"]).get("/reports/saved").json()["items"][0]["name"]
        == "Reps only"
    )
