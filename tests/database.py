"""Reading the whole test database back, for tests that prove what crmail did not keep;
databases of a test's own, for tests of migrations."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend


def every_value() -> str:
    """Every value of every table in crmail's database (the search index's too), as text."""
    out = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                out += [
                    bytes(v).decode("utf-8", "replace")
                    if isinstance(v, bytes | memoryview)
                    else str(v)
                    for v in row
                    if v is not None
                ]
    return "\n".join(out)


@contextmanager
def own_database(alias: str = "own") -> Iterator[BaseDatabaseWrapper]:
    """An empty database beside the test database, on the same engine, as ``alias``: for a
    test of one app's migrations, which migrates only that app and what it depends on.
    (Taking the test database back to an app's first migration takes every app that
    depends on it along, there and back: on mail, 13 s of a pass.) SQLite: a file in a
    folder of its own; PostgreSQL: a database on the same server. Both go at the end."""
    from tests.testenv import on_server

    settings = dict(connections["default"].settings_dict)
    postgresql = connection.vendor == "postgresql"
    folder = None
    if postgresql:
        name = f"crmail_own_{uuid.uuid4().hex[:10]}"
        on_server(f'CREATE DATABASE "{name}"')
    else:
        folder = tempfile.mkdtemp(prefix="crmail-own-")
        name = f"{folder}/own.sqlite3"
    own = load_backend(settings["ENGINE"]).DatabaseWrapper({**settings, "NAME": name}, alias)
    connections[alias] = own
    try:
        yield own
    finally:
        own.close()
        del connections[alias]
        if postgresql:
            on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
