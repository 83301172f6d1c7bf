"""Email reports count what each viewer may see, checked against counts made in the test
from the world's description (SPEC F5, F17)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from crmail.reports import queries
from crmail.reports.queries import BadReport, Filters, email_report
from crmail.reports.tests import world as w

pytestmark = pytest.mark.django_db

VIEWERS = ("mark", "karl", "claire", "olga")


@pytest.fixture
def world(org, settings) -> w.World:  # type: ignore[no-untyped-def]
    settings.TIME_ZONE = w.TIME_ZONE
    return w.build(org)


def got(world: w.World, viewer: str, group_by: str, filters: Filters | None = None) -> dict:  # type: ignore[type-arg]
    report = email_report(world.users[viewer], group_by, filters)
    return {r.key: (r.inbound, r.outbound) for r in report.rows if r.count}


@pytest.mark.parametrize(
    "group_by", ["user", "source", "month", "record_type", "stage", "template"]
)
def test_each_viewer_counts_what_they_may_see_by_each_group(world, group_by):
    for viewer in VIEWERS:
        assert got(world, viewer, group_by) == w.expected(world, viewer, group_by), viewer


def test_the_figures_a_person_would_check_by_hand(world):
    # Karl sees Mark's shared mail on records, the sent mail and Pat's: not Mark's unlinked
    # message nor Claire's private one.
    karl = email_report(world.users["karl"], "source")
    assert (karl.inbound, karl.outbound, karl.total) == (4, 3, 7)
    assert [(r.label, r.count) for r in karl.rows] == [
        ("IMAP", 3),
        ("POP3", 2),
        ("Microsoft Graph", 1),
        ("Sent from crmail", 1),
        ("BCC Dropbox", 1),
    ]
    # Olga, in another branch, sees only what everyone sees: the sent mail and Pat's.
    olga = email_report(world.users["olga"], "user")
    names = {r.label: r.count for r in olga.rows}
    assert names == {"Rex Rep": 1, "Pia Peer": 1, "Pat Pop": 2, "Gil Graph": 1}
    assert olga.total == 5


def test_a_message_held_privately_is_not_counted_under_its_holder(world):
    # Olga sees the message Mark sent from crmail, but not his copy of it in his IMAP Sent
    # folder: it counts as sent from crmail, not as IMAP mail.
    olga = {r.key: r.count for r in email_report(world.users["olga"], "source").rows}
    assert "imap" not in olga and olga["crmail"] == 1


def test_months_are_in_the_organisations_time_zone_and_empty_ones_are_shown(world):
    report = email_report(world.users["mark"], "month")
    assert [(r.key, r.label, r.count) for r in report.rows] == [
        ("2026-06", "June 2026", 3),
        ("2026-07", "July 2026", 3),  # late_june is on 1 July in Berlin
        ("2026-08", "August 2026", 2),
    ]
    days = email_report(world.users["olga"], "week")
    assert days.rows[0].key == "2026-06-29"  # a Monday
    assert sum(r.count for r in days.rows) == 5
    assert len(days.rows) == 7 and days.rows[1].count == 0


def test_filters_narrow_by_period_and_source(world):
    def specs_for(viewer: str, source: str | None, after: date | None, before: date | None):  # type: ignore[no-untyped-def]
        berlin = ZoneInfo(w.TIME_ZONE)
        for spec in w.SPECS:
            day = spec.at.astimezone(berlin).date()
            if (after and day < after) or (before and day >= before):
                continue
            boxes = [b for b in spec.copies if w.copy_seen_by(spec, viewer, b)]
            sources = {w.PROTOCOLS[b] for b in boxes} | ({spec.sent[1]} if spec.sent else set())
            if source and source not in sources:
                continue
            yield spec

    cases = [
        ("karl", "imap", None, None),
        ("claire", "dropbox", None, None),
        ("olga", "imap", None, None),
        ("mark", None, date(2026, 7, 1), date(2026, 8, 1)),
        ("karl", "pop3", date(2026, 7, 1), None),
    ]
    for viewer, source, after, before in cases:
        filters = Filters(after=after, before=before, source=source)
        want = w.expected(world, viewer, "user", list(specs_for(viewer, source, after, before)))
        assert got(world, viewer, "user", filters) == want, (viewer, source, after, before)
    assert email_report(world.users["olga"], "user", Filters(source="imap")).total == 0


def test_someone_who_may_read_no_mail_gets_an_empty_report(world):
    world.users["olga"].is_active = False
    report = email_report(world.users["olga"], "month")
    assert report.total == 0 and report.rows == []


def test_bad_reports_are_refused_in_words():
    with pytest.raises(BadReport, match="Group by one of") as bad:
        queries.check("owner", Filters())
    assert bad.value.field == "group_by"
    with pytest.raises(BadReport, match="Choose a source") as bad:
        queries.check("user", Filters(source="fax"))
    assert bad.value.field == "source"
    with pytest.raises(BadReport, match="after its start"):
        queries.check("user", Filters(after=date(2026, 2, 1), before=date(2026, 1, 1)))


def test_the_copies_a_viewer_sees_anywhere_are_those_sharing_allows(world):
    from crmail.mailboxes.models import Location
    from crmail.sharing.visibility import visible_copies_anywhere, visible_messages

    boxes = {box.pk: key for key, box in world.mailboxes.items()}
    for viewer in VIEWERS:
        user = world.users[viewer]
        seen = Location.objects.filter(visible_copies_anywhere(user))
        got = {(m, boxes[b]) for m, b in seen.values_list("message_id", "mailbox_id")}
        want = {
            (world.messages[spec.name].pk, box)
            for spec in w.SPECS
            for box in spec.copies
            if w.copy_seen_by(spec, viewer, box)
        }
        assert got == want, viewer
        visible = set(visible_messages(user).values_list("pk", flat=True))
        assert {m for m, _ in got} <= visible


ZONES = [
    "UTC",
    "Europe/Berlin",  # whole hours, summer time
    "America/New_York",
    "Asia/Kolkata",  # +5:30: quarter hours
    "Asia/Kathmandu",  # +5:45
    "Australia/Lord_Howe",  # a half-hour summer time
    "America/St_Johns",  # changes at 00:01 local in some years: minutes
    "Africa/Monrovia",  # -0:44:30 until 1972: seconds
]


@examples(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    day=st.dates(min_value=date(1960, 1, 1), max_value=date(2050, 12, 31)),
    seconds=st.integers(min_value=-7200, max_value=7200),
    zone_name=st.sampled_from(ZONES),
    kind=st.sampled_from(queries.PERIODS),
)
def test_sqlite_periods_by_utc_buckets_agree_with_djangos_truncation(day, seconds, zone_name, kind):
    """On SQLite a period is found from the hour (quarter hour, minute, second) of UTC a
    message's date is in: the same period as Django's truncation of that date in the
    organisation's zone, within two hours of a local midnight (where they could part)."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL truncates in the zone itself")
    midnight = datetime.combine(day, time(), tzinfo=ZoneInfo(zone_name))
    at = midnight.astimezone(UTC) + timedelta(seconds=seconds)
    stored = connection.ops.adapt_datetimefield_value(at)
    with override_settings(TIME_ZONE=zone_name), connection.cursor() as cursor:
        trunc, params = connection.ops.datetime_trunc_sql(kind, "d", (), zone_name)
        cursor.execute(
            f"SELECT {queries._utc_bucket('d')}, {trunc} FROM (SELECT %s AS d)",
            (*params, stored),
        )
        bucket, truncated = cursor.fetchone()
        assert queries._local_periods(kind, {bucket: (1, 0)}) == {truncated: (1, 0)}
