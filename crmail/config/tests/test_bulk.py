"""Rows written with prepared statements: datetimes in the database's own form, new ids in
the order of the rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.db.models import DateTimeField
from hypothesis import given, settings
from hypothesis import strategies as st

from crmail.config.bulk import (
    LOADED_FROM,
    ROWS_PER_STATEMENT,
    datetimes,
    insert_returning_ids,
)
from crmail.mail.models import Thread

pytestmark = pytest.mark.django_db


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_a_prepared_datetime_is_what_the_field_would_give(when, minutes):
    aware = when.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    assert datetimes(connection)(aware) == DateTimeField().get_db_prep_save(aware, connection)
    assert datetimes(connection)(None) is None


def test_a_prepared_datetime_round_trips_through_the_database():
    when = datetime(2026, 12, 6, 23, 30, 5, 123456, tzinfo=timezone(timedelta(hours=-5)))
    (pk,) = insert_returning_ids(
        Thread, ("subject", "last_message_at"), [("t", datetimes(connection)(when))]
    )
    assert Thread.objects.get(pk=pk).last_message_at == when.astimezone(UTC)


def test_new_ids_come_back_in_the_order_of_the_rows():
    rows = [(f"thread {n}", None) for n in range(ROWS_PER_STATEMENT * 2 + 7)]
    ids = insert_returning_ids(Thread, ("subject", "last_message_at"), rows)
    assert len(set(ids)) == len(rows)
    subjects = dict(Thread.objects.filter(pk__in=ids).values_list("pk", "subject"))
    assert [subjects[pk] for pk in ids] == [subject for subject, _ in rows]
    assert insert_returning_ids(Thread, ("subject",), []) == []


def test_rows_go_in_many_statements_and_conflicting_ones_are_skipped_when_asked():
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from crmail.config.bulk import insert_rows
    from crmail.jobs.models import Lease

    expires = datetimes(connection)(timezone.now())
    Lease.objects.create(name="lease 7", holder="first", expires_at=timezone.now())
    rows = [(f"lease {n}", "second", expires) for n in range(ROWS_PER_STATEMENT + 30)]
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(Lease, ("name", "holder", "expires_at"), rows)
    insert_rows(Lease, ("name", "holder", "expires_at"), rows, ignore_conflicts=True)
    holders = dict(Lease.objects.values_list("name", "holder"))
    assert len(holders) == len(rows)
    assert holders["lease 7"] == "first" and holders[f"lease {len(rows) - 1}"] == "second"


def test_rows_written_twice_in_a_transaction_and_after_one_rolled_back_go_in_once_each():
    """On PostgreSQL the rows pass through a temporary table of the session: it must be
    empty for its next use, and made again when the transaction that made it rolled back."""
    from django.db import transaction

    names = ("last_message_at", "subject")  # a loading table of its own
    many = [[(None, f"{part} {n:03d}") for n in range(LOADED_FROM)] for part in "xab"]
    with pytest.raises(RuntimeError), transaction.atomic():
        insert_returning_ids(Thread, names, many[0])
        raise RuntimeError
    with transaction.atomic():
        first = insert_returning_ids(Thread, names, many[1])
        second = insert_returning_ids(Thread, names, many[2])
    subjects = dict(Thread.objects.values_list("pk", "subject"))
    expected = [subject for _, subject in many[1] + many[2]]
    assert [subjects[pk] for pk in first + second] == expected
    assert sorted(subjects.values()) == expected


def test_values_that_look_like_placeholders_are_written_as_they_are():
    """SQLite's statements are written with ``?`` and go past Django's rewriting of
    ``%s``: a subject holding ``%s``, ``%%`` or ``?`` is stored as it was given, and the
    statement is still counted and logged as Django's own are."""
    from django.test.utils import CaptureQueriesContext

    subjects = ["100% sure", "%s and %%s", "why?", "?, ?", "%(name)s"]
    with CaptureQueriesContext(connection) as queries:
        ids = insert_returning_ids(Thread, ("subject",), [(s,) for s in subjects])
    assert [Thread.objects.get(pk=pk).subject for pk in ids] == subjects
    assert any("INSERT INTO" in q["sql"] for q in queries.captured_queries)
