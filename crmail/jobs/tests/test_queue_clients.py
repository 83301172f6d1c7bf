"""Each queue backend works in a fresh process, where huey was imported without the client
libraries of the Redis and PostgreSQL queues (they are handed over when such a queue is built)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import sys
from crmail.jobs import queue
print("redis" in sys.modules, "psycopg" in sys.modules)
huey = queue.build_huey(sys.argv[1])
huey.storage.enqueue(b"job " + sys.argv[2].encode())
print(huey.storage.dequeue().decode())
"""


def run_queue(url: str) -> list[str]:
    """(clients imported before the queue was built, the job read back) in a new process."""
    token = uuid.uuid4().hex
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, token],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == f"job {token}"
    return lines


def test_the_sqlite_queue_needs_neither_redis_nor_psycopg(tmp_path):
    assert run_queue(f"sqlite:///{tmp_path}/queue.sqlite3")[0] == "False False"


def test_a_redis_queue_gets_its_client():
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379").ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis must run for this test: {exc}")
    assert run_queue("redis://127.0.0.1:6379/15")[0] == "False False"


@pytest.mark.django_db
def test_a_postgresql_queue_gets_its_client():
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL queue is tried on a PostgreSQL run, in its database")
    db = connection.settings_dict
    user = f"{db['USER']}@" if db.get("USER") else ""
    url = f"postgresql://{user}{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    assert run_queue(url)[0] == "False False"
