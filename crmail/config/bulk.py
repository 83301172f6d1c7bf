"""Many rows written with a few statements, many rows to each: the outbox's events, a
first sync's messages, locations, participants and attachments."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import DateTimeField, Model

# Rows one INSERT carries at most.
ROWS_PER_STATEMENT = 500
# PostgreSQL: from this many rows on, ``inserts`` loads them by COPY (three statements);
# fewer go in one INSERT, short enough for psycopg to keep its conversion.
LOADED_FROM = 50


def values_sql(
    values: Sequence[int] | Sequence[str], kind: str | None = None, using: str = "default"
) -> tuple[str, tuple[Any, ...]]:
    """``IN (…)`` of these integers or texts as one parameter, however many: an array on
    PostgreSQL (``kind``: its element type, ``bigint`` or ``text``; by default that of the
    first value), a JSON list read by ``json_each`` on SQLite. A parameter a value costs
    more to build, to convert and to parse than the statement's work, thousands of them."""
    if connections[using].vendor == "postgresql":
        kind = kind or ("text" if values and isinstance(values[0], str) else "bigint")
        return f"= ANY(%s::{kind}[])", (list(values),)
    return "IN (SELECT value FROM json_each(%s))", (json.dumps(list(values)),)


def insert_rows(
    model: type[Model],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """INSERT rows of values ready for the database, many to a statement, skipping rows
    that break a unique constraint when asked.

    ``bulk_create`` builds a model instance per row and prepares each value through its
    field; for a first sync's messages, locations and participants that was most of the
    cost of writing them. One statement per row (``executemany``) cost 2.5 times what
    rows in one statement do on SQLite (binding, stepping and resetting each, and
    letting other threads run between the rows). On PostgreSQL rows that may not
    conflict go by COPY (a first sync's participants: a third of the INSERTs' time).

    Values must be what the database takes: str, int, bool, bytes, None, or a datetime
    prepared with the field's ``get_db_prep_save`` (``datetimes``).
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor == "postgresql" and not ignore_conflicts:
        # COPY: no statement to parse and plan per 500 rows (triggers fire as for INSERT).
        quote = connection.ops.quote_name
        columns = ", ".join(quote(model._meta.get_field(n).column) for n in names)  # type: ignore[union-attr]
        with connection.cursor() as cursor:
            _copy(cursor, f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN", rows)
        return
    inserts(model, names, rows, " ON CONFLICT DO NOTHING" if ignore_conflicts else "")


@contextmanager
def _past_django(cursor: Any, sql: str) -> Iterator[None]:
    """Around a statement run on the database driver's own cursor (``cursor.cursor``),
    past Django's: its errors are made Django's (IntegrityError…), and it is logged as
    Django logs a statement when it logs them (tests, DEBUG)."""
    logged = cursor.debug_sql(sql) if hasattr(cursor, "debug_sql") else nullcontext()
    with cursor.db.wrap_database_errors, logged:
        yield


def _copy(cursor: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL: ``rows`` through ``COPY … FROM STDIN`` (``sql``), past Django's cursor."""
    with _past_django(cursor, sql), cursor.cursor.copy(sql) as copy:
        for values in rows:
            copy.write_row(values)


def _execute_qmark(cursor: Any, sql: str, params: Sequence[Any]) -> None:
    """SQLite: ``sql``, written with ``?`` placeholders, past Django's cursor wrapper,
    which turns each ``%s`` of a statement into ``?`` with a regular expression (about
    1 ms for a statement of 500 rows of 20 values)."""
    with _past_django(cursor, sql):
        sqlite3.Cursor.execute(cursor.cursor, sql, params)


def inserts(
    model: type[Model],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    tail: str = "",
    *,
    constants: Sequence[tuple[str, str]] = (),
) -> list[tuple[Any, ...]]:
    """INSERT ``rows`` into ``names`` of ``model``, each statement ending with ``tail`` (an
    ON CONFLICT or RETURNING clause); returns the rows RETURNING gave, statement after
    statement. ``constants`` are (field name, SQL literal) pairs: the same value for
    every row, written into the statement.

    On SQLite, up to ``rows_per_statement`` rows a statement. On PostgreSQL, from
    ``LOADED_FROM`` rows on, they go by COPY into a temporary table of the session, and
    one INSERT … SELECT takes them from there in their order: a statement of thousands of
    parameters cost more to turn into PostgreSQL's form in psycopg, and to parse and plan
    in the server, than the rows cost to write."""
    if not rows:
        return []
    fields = [model._meta.get_field(name) for name in names]
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    given = [quote(f.column) for f in fields]  # type: ignore[union-attr]
    fixed = [quote(model._meta.get_field(n).column) for n, _ in constants]  # type: ignore[union-attr]
    columns = ", ".join([*given, *fixed])
    literals = [literal for _, literal in constants]
    found: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) >= LOADED_FROM:
            with transaction.atomic(using=connection.alias):  # the loaded rows live in it
                loading = _loading_table(cursor, table, given)
                numbered = ((*values, n) for n, values in enumerate(rows))
                _copy(cursor, f"COPY {loading} FROM STDIN", numbered)
                # Taken out as they go in, so the table is empty for its next use (and
                # ON COMMIT DELETE ROWS truncates it without a trace of them).
                cursor.execute(
                    f"WITH loaded AS (DELETE FROM {loading} RETURNING *) "  # noqa: S608
                    f"INSERT INTO {table} ({columns}) "
                    f"SELECT {', '.join([*given, *literals])} FROM loaded "
                    f"ORDER BY {_ORDINAL}{tail}"
                )
                return cursor.fetchall() if cursor.description else []
        sqlite = connection.vendor == "sqlite"
        mark = "?" if sqlite else "%s"
        row = "(" + ", ".join([mark] * len(fields) + literals) + ")"
        size = rows_per_statement(len(fields))
        for start in range(0, len(rows), size):
            part = rows[start : start + size]
            # Identifiers from the model, quoted; literals from the caller; every value is a
            # parameter.
            sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(part))}{tail}"  # noqa: S608
            params = [value for values in part for value in values]
            if sqlite:
                _execute_qmark(cursor, sql, params)
            else:
                cursor.execute(sql, params)
            if cursor.description:
                found += cursor.fetchall()
    return found


# PostgreSQL: the column of a loading table that keeps its rows' order.
_ORDINAL = "crmail_row"


def _loading_table(cursor: Any, table: str, columns: Sequence[str]) -> str:
    """PostgreSQL: the temporary table of this session that ``columns`` of ``table`` are
    loaded into by COPY, with their types and no constraints, and the rows' order in
    ``_ORDINAL``; made the first time (it lasts as long as the session)."""
    digest = hashlib.sha256(f"{table}({', '.join(columns)})".encode()).hexdigest()[:16]
    name = f"crmail_loading_{digest}"
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ON COMMIT DELETE ROWS AS "  # noqa: S608
        f"SELECT {', '.join(columns)}, 0::bigint AS {_ORDINAL} FROM {table} WITH NO DATA"
    )
    return name


def rows_per_statement(columns: int) -> int:
    """How many rows of ``columns`` values one statement carries: at most
    ``ROWS_PER_STATEMENT``, and fewer than SQLite's 32,766 parameters (PostgreSQL's 65,535)."""
    return max(1, min(ROWS_PER_STATEMENT, 30_000 // max(1, columns)))


def insert_returning_ids(
    model: type[Model], names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[int]:
    """INSERT rows as ``insert_rows`` does, several to a statement, and return their new
    ids in the order of ``rows``. The ids are sorted, not taken in the order RETURNING
    gives them (neither SQLite nor PostgreSQL promise that order): rows get increasing
    ids in the order they are inserted, which is the order of ``rows``."""
    if not rows:
        return []
    quote = connections[router.db_for_write(model)].ops.quote_name
    return sorted(pk for (pk,) in inserts(model, names, rows, f" RETURNING {quote('id')}"))


def datetimes(connection: Any) -> Callable[[datetime | None], Any]:
    """A function giving what ``DateTimeField.get_db_prep_save`` gives for an aware
    datetime (or None) on ``connection``, without Django's path through the field per
    value (a first sync prepares tens of thousands). Naive datetimes take that path."""
    field = DateTimeField()
    if connection.vendor == "sqlite" and settings.USE_TZ and connection.timezone_name == "UTC":

        def prepared(value: datetime | None) -> Any:
            if value is None:
                return None
            offset = value.utcoffset()
            if offset is None:
                return field.get_db_prep_save(value, connection)
            # Django's SQLite form: the UTC time, naive, as str() writes it.
            return str((value - offset).replace(tzinfo=None))

        return prepared

    if connection.vendor == "postgresql":

        def as_given(value: datetime | None) -> Any:
            if value is None or value.utcoffset() is not None:
                return value  # psycopg sends aware datetimes as they are
            return field.get_db_prep_save(value, connection)

        return as_given
    return lambda value: field.get_db_prep_save(value, connection)
