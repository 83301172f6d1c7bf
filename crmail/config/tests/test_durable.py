"""Commits made durable before another server lets its copy of the mail go."""

from __future__ import annotations

import os

import pytest
from django.db.utils import ConnectionHandler

from crmail.config import env
from crmail.config.durable import sync_commits

pytestmark = pytest.mark.database_independent  # its own SQLite file: one pass runs it


def test_what_sqlite_committed_is_synced_to_disk(tmp_path, monkeypatch, django_db_blocker):
    # With synchronous=NORMAL a commit writes SQLite's log without syncing it.
    monkeypatch.delenv("CRMAIL_DATABASE_URL", raising=False)
    connection = ConnectionHandler({"default": env.database_settings(tmp_path)})["default"]
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE mail (id INTEGER PRIMARY KEY)")
            cursor.execute("INSERT INTO mail DEFAULT VALUES")
        synced = []
        fsync = os.fsync

        def recorded(fd: int) -> None:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            fsync(fd)

        monkeypatch.setattr(os, "fsync", recorded)
        sync_commits(connection)
        connection.close()
    assert synced == [f"{tmp_path / 'crmail.sqlite3'}-wal"]
