"""Moving raw bytes to their own table keeps every message's bytes, both ways."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor

from crmail.mail.store import pack, unpack
from tests.database import own_database

BEFORE = [("mail", "0001_initial")]
AFTER = [("mail", "0002_messageraw")]


def _migrate(target: list[tuple[str, str]], on: BaseDatabaseWrapper = connection):
    executor = MigrationExecutor(on)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def test_raw_bytes_move_to_their_own_table_and_back(django_db_blocker):
    """On a database of its own: mail's first migrations depend on no other app."""
    with django_db_blocker.unblock(), own_database() as own:
        Message = _migrate(BEFORE, own).get_model("mail", "Message")
        texts = {"a" * 64: b"Subject: a\r\n\r\n" + b"compressible " * 500, "b" * 64: b"x"}
        for digest, raw in texts.items():
            stored, compression = pack(raw)
            Message.objects.using(own.alias).create(
                sha256=digest, size=len(raw), raw=stored, compression=compression
            )
        rows = _migrate(AFTER, own).get_model("mail", "MessageRaw").objects.using(own.alias)
        kept = {
            sha: unpack(raw, compression)
            for sha, raw, compression in rows.values_list("message__sha256", "raw", "compression")
        }
        assert kept == texts
        back = _migrate(BEFORE, own).get_model("mail", "Message").objects.using(own.alias)
        assert {m.sha256: unpack(m.raw, m.compression) for m in back} == texts


# The text columns a first sync writes with every message, participant and blob, and the
# lookups crmail makes on them: each by the whole value (decision 083).
LOOKED_UP = [
    ("mail_message", "sha256"),
    ("mail_message", "parse_state"),
    ("mail_message", "message_id"),
    ("mail_message", "in_reply_to"),
    ("mail_message", "from_address"),
    ("mail_participant", "address"),
    ("blobs_blob", "sha256"),
]


def _pattern_indexes() -> set[tuple[str, str]]:
    """(table, column) of each ``varchar_pattern_ops`` index on the tables of LOOKED_UP."""
    tables = sorted({table for table, _ in LOOKED_UP})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
            " AND indexdef LIKE '%%pattern_ops%%'",
            [tables],
        )
        return {
            (table, column)
            for table, definition in cursor.fetchall()
            for t, column in LOOKED_UP
            if t == table and f"({column} varchar_pattern_ops)" in definition
        }


def _plan(table: str, column: str) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # as on a table of many rows
        cursor.execute(f"EXPLAIN SELECT * FROM {table} WHERE {column} = %s", ["x"])
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_writes_no_pattern_index_and_still_finds_by_each_column():
    assert _pattern_indexes() == set()
    for table, column in LOOKED_UP:
        assert "Index" in _plan(table, column), (table, column)
    try:  # back: the indexes Django made return, and go again forward
        _migrate([("mail", "0009_received_at")])
        assert _pattern_indexes() == set(LOOKED_UP)
        _migrate([("mail", "0010_no_pattern_indexes")])
        assert _pattern_indexes() == set()
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
