"""Reading the whole test database back, for tests that prove what crmail did not keep."""

from __future__ import annotations

from django.db import connection


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
