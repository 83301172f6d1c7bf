"""Running the installed `crmail` command as an operator would, in a data dir of its own."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper

from tests.testenv import PG_URL, on_server


def crmail_script() -> str:
    beside_python = Path(sys.executable).with_name("crmail")
    found = str(beside_python) if beside_python.exists() else shutil.which("crmail")
    if not found:
        pytest.skip("the crmail script is not installed (pip install -e .)")
    return found


def operator_environment(tmp_path: Path) -> dict[str, str]:
    """This process's environment without crmail's settings, and a fresh data dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRMAIL_", "DJANGO_")) and k != "COLUMNS"
    }
    env["CRMAIL_DATA_DIR"] = str(tmp_path / "data")
    env["CRMAIL_LOG_LEVEL"] = "WARNING"
    return env


class MigratedDatabase:
    """A database brought up to date once per test run, for tests whose subject is not the
    migrations: each copies it (``into``) before its own `crmail init`, which then has no
    migration left to apply (about 6 s each otherwise). Tests of `crmail init` on a fresh
    data dir do not use it. SQLite: the file is copied; PostgreSQL: a database made from
    it (``CREATE DATABASE … TEMPLATE``). Made from the run's test database as soon as
    pytest-django has migrated it (``keep``), on that database's engine; on first use, by
    a migration of its own, on the other."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._sqlite: Path | None = None
        self._postgresql: str | None = None

    def _migrate(self, env: dict[str, str]) -> None:
        Path(env["CRMAIL_DATA_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
        migrated = subprocess.run(
            [sys.executable, "-c", MIGRATE],
            env={**env, "DJANGO_SETTINGS_MODULE": "crmail.config.settings"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrated.returncode == 0, migrated.stderr

    def keep(self, connection: BaseDatabaseWrapper) -> None:
        """Keep a copy of ``connection``'s database, which the test run has just migrated:
        the tables and rows a `migrate` makes, as a migration of its own would make them
        (SQLite: the in-memory database backed up into a file, in WAL mode as crmail keeps
        it; PostgreSQL: a database made from it as a template, which wants no one else
        connected to it: this process's connection is closed)."""
        if connection.vendor == "sqlite" and self._sqlite is None:
            import sqlite3

            data = Path(operator_environment(self.base / "sqlite")["CRMAIL_DATA_DIR"])
            data.mkdir(mode=0o700, parents=True, exist_ok=True)
            database = data / "crmail.sqlite3"
            connection.ensure_connection()
            copy = sqlite3.connect(database)
            try:
                connection.connection.backup(copy)
                copy.execute("PRAGMA journal_mode=WAL")
            finally:
                copy.close()  # the last connection: no -wal left
            self._sqlite = database
        elif connection.vendor == "postgresql" and self._postgresql is None:
            name = f"crmail_migrated_{uuid.uuid4().hex[:10]}"
            connection.close()
            on_server(f'CREATE DATABASE "{name}" TEMPLATE "{connection.settings_dict["NAME"]}"')
            self._postgresql = name

    def sqlite_file(self) -> Path:
        if self._sqlite is None:
            env = operator_environment(self.base / "sqlite")
            self._migrate(env)
            database = Path(env["CRMAIL_DATA_DIR"]) / "crmail.sqlite3"
            assert not database.with_name("crmail.sqlite3-wal").exists()  # all in the file
            self._sqlite = database
        return self._sqlite

    def postgresql_name(self) -> str:
        if self._postgresql is None:
            name = f"crmail_migrated_{uuid.uuid4().hex[:10]}"
            on_server(f'CREATE DATABASE "{name}"')
            env = operator_environment(self.base / "postgresql")
            self._migrate({**env, "CRMAIL_DATABASE_URL": f"{PG_URL}/{name}"})
            self._postgresql = name
        return self._postgresql

    def into(self, env: dict[str, str]) -> dict[str, str]:
        """Give ``env``'s data dir (SQLite) a copy of the migrated database; ``env``."""
        assert "CRMAIL_DATABASE_URL" not in env, "PostgreSQL: CREATE DATABASE … TEMPLATE"
        data = Path(env["CRMAIL_DATA_DIR"])
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        copy = data / "crmail.sqlite3"
        shutil.copyfile(self.sqlite_file(), copy)
        copy.chmod(0o600)
        return env

    def drop(self) -> None:
        if self._postgresql is not None:
            on_server(f'DROP DATABASE IF EXISTS "{self._postgresql}" WITH (FORCE)')


MIGRATE = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from django.db import connections
connections.close_all()  # SQLite: every page written back to the file, no -wal left
"""


def crmail(env: dict[str, str], *argv: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [crmail_script(), *argv],
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_serving(server: subprocess.Popen[str], port: int, within: float = 60) -> None:
    """Wait until `crmail serve` (``server``) answers on ``port``; fail if it exits first.

    Its first answer builds the OpenAPI document: on a busy machine that takes seconds, so
    a request that times out is asked again, like one refused before the port is open."""
    deadline = time.monotonic() + within
    while True:
        assert server.poll() is None, server.communicate()[1]
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=10
            ) as response:
                if response.status == 200:
                    return
        except OSError:  # refused, reset or timed out (URLError is an OSError too)
            pass
        assert time.monotonic() < deadline, f"crmail serve did not answer within {within} s"
        time.sleep(0.2)


@contextlib.contextmanager
def start_serve(env: dict[str, str], *argv: str) -> Iterator[int]:
    """`crmail serve` on a free port, answering; its port. Stopped with SIGTERM afterwards."""
    port = free_port()
    server = subprocess.Popen(
        [crmail_script(), "serve", "--port", str(port), *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(server, port)
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, err = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
        assert "Traceback" not in (err or ""), err
