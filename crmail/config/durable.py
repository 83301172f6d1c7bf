"""What was committed made durable now, where the database leaves that to later.

crmail's SQLite runs in WAL mode with ``synchronous=NORMAL`` (``env.SQLITE_OPTIONS``): a
commit writes the write-ahead log without syncing it, and the log is synced at each
checkpoint. A power cut (not a crash of crmail: the log is in the system's cache then)
can lose the last commits, never corrupt the file, and the mail they held is fetched
again. Not so where crmail has told another server that it holds the mail and that server
let its copy go: a POP3 server deleting what it handed over, a sending server told 250
by the dropbox. Before that, ``sync_commits``. And where crmail claims a piece of work
before doing it, so that it is done at most once (an email sent), the claim goes to disk
before the work: ``claimed``. PostgreSQL's commits are durable when they return
(``synchronous_commit``, on unless an administrator turns it off).
"""

from __future__ import annotations

import os

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper


def sync_commits(connection: BaseDatabaseWrapper | None = None) -> None:
    """Make every transaction committed so far durable (default: the default database)."""
    connection = connection or connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():  # type: ignore[attr-defined]
        return
    try:
        log = os.open(f"{connection.settings_dict['NAME']}-wal", os.O_RDONLY)
    except FileNotFoundError:
        return  # no log: every commit is in the database file, synced by a checkpoint
    try:
        os.fsync(log)  # the file's pages, whichever descriptor wrote them
    finally:
        os.close(log)


def claimed(updated: int) -> bool:
    """Whether a committed UPDATE that claims a piece of work took its row (``updated``:
    the rows it changed); if it did, the claim is made durable before the work goes out,
    so that after a power cut it does not come back unclaimed and the work go twice."""
    if updated:
        sync_commits()
    return bool(updated)
