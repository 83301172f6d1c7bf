"""Moving raw bytes to their own table keeps every message's bytes, both ways."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crmail.mail.store import pack, unpack

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("mail", "0001_initial")]
AFTER = [("mail", "0002_messageraw")]


def _migrate(target: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def test_raw_bytes_move_to_their_own_table_and_back():
    old = _migrate(BEFORE)
    Message = old.get_model("mail", "Message")
    texts = {"a" * 64: b"Subject: a\r\n\r\n" + b"compressible " * 500, "b" * 64: b"x"}
    for digest, raw in texts.items():
        stored, compression = pack(raw)
        Message.objects.create(sha256=digest, size=len(raw), raw=stored, compression=compression)
    try:
        new = _migrate(AFTER)
        kept = {
            sha: unpack(raw, compression)
            for sha, raw, compression in new.get_model("mail", "MessageRaw").objects.values_list(
                "message__sha256", "raw", "compression"
            )
        }
        assert kept == texts
        back = _migrate(BEFORE).get_model("mail", "Message")
        assert {m.sha256: unpack(m.raw, m.compression) for m in back.objects.all()} == texts
    finally:  # every app back at its newest, those that depend on mail's later ones too
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
