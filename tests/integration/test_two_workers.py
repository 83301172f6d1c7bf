"""Scale-out as the README describes it: PostgreSQL, a Redis queue, two `crmail worker`s.

Syncs of several mailboxes are queued again and again while both workers run; every
mailbox ends synced once over, agreeing with the server, and no sync lease is left behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid

import psycopg
import pytest
import redis

from crmail.mailboxes.tests.test_sync import mail
from tests.operator import crmail, crmail_script

PG_URL = os.environ.get("CRMAIL_TEST_PG_URL", "postgresql://127.0.0.1:5432").rstrip("/")
REDIS_URL = "redis://127.0.0.1:6379"
ADMIN = {"CRMAIL_ADMIN_EMAIL": "admin@example.com", "CRMAIL_ADMIN_PASSWORD": "quiet harbour 4412"}

# Each mailbox's state and how many messages it holds.
STATES = """
    select m.id, m.state, count(distinct l.message_id) from mailboxes_mailbox m
    left join mailboxes_location l on l.mailbox_id = m.id group by m.id, m.state order by m.id
"""

pytestmark = pytest.mark.skipif(
    not os.environ.get("CRMAIL_TEST_DB", "").startswith("postgres"),
    reason="scale-out runs in the PostgreSQL pass of the suite",
)


@pytest.fixture
def scale_out_env(operator_env):
    """A fresh PostgreSQL database and a Redis database of their own for the workers."""
    name = f"crmail_workers_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(f"{PG_URL}/postgres", autocommit=True)
        queue = redis.Redis.from_url(REDIS_URL)
        queue.ping()
    except (psycopg.Error, redis.RedisError) as exc:
        pytest.fail(f"PostgreSQL and Redis must run for this test: {exc}")
    db_index = random.randint(1, 15)
    queue = redis.Redis.from_url(f"{REDIS_URL}/{db_index}")
    queue.flushdb()
    admin.execute(f'CREATE DATABASE "{name}"')
    env = {
        **operator_env,
        **ADMIN,
        "CRMAIL_DATABASE_URL": f"{PG_URL}/{name}",
        "CRMAIL_QUEUE_URL": f"{REDIS_URL}/{db_index}",
    }
    try:
        yield env
    finally:
        queue.flushdb()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [crmail_script(), "worker", "--workers", "2"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.django_db
def test_two_workers_on_postgresql_and_redis_sync_every_mailbox(dovecot, scale_out_env):
    env = scale_out_env
    assert crmail(env, "init").returncode == 0
    ids = []
    for n in range(4):
        login, password = dovecot.new_user()
        for m in range(25):
            dovecot.deliver(login, mail(n * 100 + m))
        email = f"rep{n}@example.com"
        assert crmail(env, "user", "add", email, "--name", f"Rep {n}").returncode == 0
        added = crmail(
            env,
            *("mailbox", "add", "--user", email, "--protocol", "imap", "--host", "127.0.0.1"),
            *("--port", str(dovecot.imap_port), "--security", "none", "--login", login),
            *("--password-env", "MAILBOX_PW"),
            MAILBOX_PW=password,
        )
        assert added.returncode == 0, added.stderr
        ids.append(added.stdout.strip())
    workers = [start_worker(env), start_worker(env)]
    try:
        for _ in range(3):
            queued = crmail(env, "mailbox", "sync", *ids, "--background")
            assert queued.returncode == 0, queued.stderr
        deadline = time.monotonic() + 90
        with psycopg.connect(env["CRMAIL_DATABASE_URL"], autocommit=True) as conn:
            while time.monotonic() < deadline:
                states = conn.execute(STATES).fetchall()
                if all(row[1] == "completed" and row[2] == 25 for row in states):
                    break
                time.sleep(0.2)
        assert [(state, count) for _, state, count in states] == [("completed", 25)] * 4
        for mailbox_id in ids:
            verify = crmail(env, "mailbox", "verify", mailbox_id)
            assert verify.returncode == 0, verify.stdout
        with psycopg.connect(env["CRMAIL_DATABASE_URL"]) as conn:
            held = conn.execute(
                "select count(*) from jobs_lease where name like 'mailbox-sync:%%' "
                "and expires_at > now()"
            ).fetchone()[0]
            locations = conn.execute("select count(*) from mailboxes_location").fetchone()[0]
        assert held == 0 and locations == 100
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
