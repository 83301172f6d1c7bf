"""Many rows written with one prepared statement: the outbox's events, a first sync's
messages, locations, participants and attachments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Model


def insert_rows(
    model: type[Model],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """INSERT rows of values ready for the database with one prepared statement
    (executemany), skipping rows that break a unique constraint when asked.

    ``bulk_create`` builds a model instance per row and prepares each value through its
    field; for a first sync's messages, locations and participants that was most of the
    cost of writing them. Values must be what the database takes: str, int, bool, bytes,
    None, or a datetime prepared with the field's ``get_db_prep_save``.
    """
    if not rows:
        return
    fields = [model._meta.get_field(name) for name in names]
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)  # type: ignore[union-attr]
    marks = ", ".join(["%s"] * len(fields))
    conflicts = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    # Identifiers from the model, quoted; every value is a parameter.
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks}){conflicts}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
