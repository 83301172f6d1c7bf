"""The huey instance behind ``CRMAIL_QUEUE_URL``.

- ``sqlite:///path/queue.sqlite3`` (the default, in the data dir): SqliteHuey.
- ``redis://host:port/db``: RedisHuey, for several machines.
- ``postgresql://user@host/db``: PostgresHuey, for several machines without Redis.
- ``memory://``: jobs run at once in the calling process (tests and one-off commands).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from urllib.parse import urlsplit


def _import_huey_without_clients() -> None:
    """Import huey without the client libraries of its Redis and PostgreSQL queues.

    huey's storage module imports redis and psycopg when it is imported (0.1 to 0.2 s of
    every crmail command's start-up), and the default SQLite queue needs neither;
    ``_give_huey`` hands huey the one a Redis or PostgreSQL queue needs when it is built.
    A library imported before (psycopg for a PostgreSQL database) is left as it is.
    """
    if "huey.storage" in sys.modules:
        return
    hidden = [name for name in ("redis", "psycopg") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # huey sees ImportError
    try:
        import huey.storage  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


def _give_huey(client: str) -> None:
    """Give huey's storage module ``client`` (redis or psycopg) if it was left out."""
    from huey import storage

    if client == "redis" and storage.Redis is None:
        import redis
        import redis.exceptions

        storage.ConnectionPool = redis.ConnectionPool
        storage.Redis = storage.RedisStorage.redis_client = redis.Redis
        storage.ConnectionError = redis.exceptions.ConnectionError
        storage.TimeoutError = redis.exceptions.TimeoutError
    if client == "psycopg" and storage.psycopg is None:
        import psycopg

        storage.psycopg = psycopg


_import_huey_without_clients()

from huey import Huey, MemoryHuey, PostgresHuey, RedisHuey, SqliteHuey  # noqa: E402
from huey.storage import SqliteStorage  # noqa: E402

from crmail.config.env import ConfigError, create_private_file, parse_url  # noqa: E402

QUEUE_NAME = "crmail"


class _QueueFile(SqliteStorage):
    """huey's SQLite queue with the same durability as crmail's own database (WAL,
    ``synchronous=NORMAL``): queuing a job writes the log, it does not wait for the disk
    (huey's default syncs the disk at every job: about 4 ms a job here, and a first sync
    queues a few jobs per batch of mail). A power cut can forget the last jobs queued,
    never damage the file; what they were for is found again by the minute's sweeps (the
    outbox, syncs, webhooks)."""

    def _create_connection(self) -> sqlite3.Connection:
        conn = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


class _SqliteQueue(SqliteHuey):
    storage_class = _QueueFile


def build_huey(url: str) -> Huey:
    """Make the huey instance for ``url``; raise ConfigError naming the problem."""
    parsed = parse_url(url, setting="CRMAIL_QUEUE_URL")
    if parsed.scheme in ("sqlite", "sqlite3"):
        path = urlsplit(url).path
        filename = path[1:] if path.startswith("//") else path.lstrip("/")
        if not filename:
            raise ConfigError("CRMAIL_QUEUE_URL: sqlite URL needs a file path")
        # SqliteHuey opens its file at once: say what is wrong instead of failing settings.
        folder = Path(filename).parent
        if not folder.is_dir():
            raise ConfigError(
                f"CRMAIL_QUEUE_URL: the folder {folder} of the queue file does not exist "
                "(run `crmail init` to create the data dir)"
            )
        try:
            create_private_file(filename)  # jobs name mailboxes and users: 0600
            return _SqliteQueue(QUEUE_NAME, filename=filename, utc=True)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(
                f"CRMAIL_QUEUE_URL: cannot open the queue file {filename} ({exc})"
            ) from None
    if parsed.scheme in ("redis", "rediss"):
        _give_huey("redis")
        return RedisHuey(QUEUE_NAME, url=url, utc=True)
    if parsed.scheme in ("postgres", "postgresql"):
        # PostgresHuey creates its tables at once: an unreachable server is a problem to
        # report (the message names host and database, never the password).
        _give_huey("psycopg")
        import psycopg

        try:
            return PostgresHuey(
                QUEUE_NAME, dsn=url.replace("postgres://", "postgresql://", 1), utc=True
            )
        except psycopg.Error as exc:
            where = f"{parsed.name or 'postgres'} on {parsed.host or 'localhost'}"
            raise ConfigError(
                f"CRMAIL_QUEUE_URL: cannot reach the PostgreSQL queue database {where} "
                f"({str(exc).strip()})"
            ) from None
    if parsed.scheme == "memory":
        return MemoryHuey(QUEUE_NAME, immediate=True, utc=True)
    raise ConfigError(
        f"CRMAIL_QUEUE_URL: unsupported scheme {parsed.scheme!r} "
        "(use sqlite://, redis:// or postgresql://)"
    )
