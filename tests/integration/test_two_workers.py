"""Scale-out as the README describes it: PostgreSQL, a Redis queue, two `crmail worker`s.

Syncs of several mailboxes are queued again and again while both workers run; every
mailbox ends synced once over, agreeing with the server, no sync lease is left behind, and
neither worker died or logged an error.
"""

from __future__ import annotations

import os
import time

import psycopg
import pytest

from tests.integration.workers import (
    STATES,
    add_mailboxes,
    scale_out,
    start_worker,
    stop,
    trouble,
    verify_all,
)
from tests.operator import crmail

HELD = "select count(*) from jobs_lease where name like 'mailbox-sync:%' and expires_at > now()"

pytestmark = pytest.mark.skipif(
    not os.environ.get("CRMAIL_TEST_DB", "").startswith("postgres"),
    reason="scale-out runs in the PostgreSQL pass of the suite",
)


@pytest.fixture
def scale_out_env(operator_env, migrated_database):
    with scale_out(operator_env, migrated_database.postgresql_name()) as env:
        yield env


@pytest.mark.django_db
def test_two_workers_on_postgresql_and_redis_sync_every_mailbox(dovecot, scale_out_env, tmp_path):
    env = scale_out_env
    assert crmail(env, "init").returncode == 0
    ids = add_mailboxes(env, dovecot, 4, 25)
    workers = [start_worker(env, tmp_path / f"worker{n}.log") for n in (1, 2)]
    try:
        for _ in range(3):
            queued = crmail(env, "mailbox", "sync", *ids, "--background")
            assert queued.returncode == 0, queued.stderr
        # Three syncs of each mailbox were queued: a mailbox shows "completed" after its
        # first while a later one may still hold its lease. Done when every mailbox is
        # complete and no sync holds a lease (a lease left behind is never done).
        deadline = time.monotonic() + 90
        with psycopg.connect(env["CRMAIL_DATABASE_URL"], autocommit=True) as conn:
            while time.monotonic() < deadline:
                states = conn.execute(STATES).fetchall()
                held = conn.execute(HELD).fetchone()[0]
                if held == 0 and all(r[1] == "completed" and r[2] == 25 for r in states):
                    break
                time.sleep(0.2)
        assert [(state, count) for _, state, count in states] == [("completed", 25)] * 4
        assert held == 0
        assert verify_all(env, ids) == ""
        with psycopg.connect(env["CRMAIL_DATABASE_URL"]) as conn:
            locations = conn.execute("select count(*) from mailboxes_location").fetchone()[0]
        assert locations == 100
        assert all(w.poll() is None for w in workers)  # no worker died
        assert [trouble(tmp_path / f"worker{n}.log") for n in (1, 2)] == [[], []]
    finally:
        for worker in workers:
            stop(worker)
