"""Many mailboxes syncing at once in one worker's threads, and beside a worker killed mid-sync.

A worker's job threads and its IDLE watcher's sync threads store mail side by side; an
object they share that is not safe across threads fails jobs or crashes the process. The
checks are what an operator sees: no worker dies, its log shows no error, and every
mailbox completes with `crmail mailbox verify` agreeing with the server.

The first test runs in every pass of the suite (SQLite, or PostgreSQL with a Redis
queue); the soak test, with twenty mailboxes and a second worker killed with SIGKILL,
only with CRMAIL_SOAK=1 in the PostgreSQL pass.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.integration.workers import (
    ADMIN,
    add_mailboxes,
    scale_out,
    start_worker,
    stop,
    syncing_in,
    trouble,
    verify_all,
    wait_until_synced,
)
from tests.operator import crmail

POSTGRES_PASS = os.environ.get("CRMAIL_TEST_DB", "").startswith("postgres")


@pytest.fixture
def worker_env(operator_env, migrated_database):
    """The pass's database, migrated: SQLite and its queue in the data dir, or PostgreSQL
    and Redis."""
    with ExitStack() as stack:
        if POSTGRES_PASS:
            template = migrated_database.postgresql_name()
            yield stack.enter_context(scale_out(operator_env, template))
        else:
            yield {**migrated_database.into(operator_env), **ADMIN}


def test_one_worker_syncs_several_mailboxes_at_once_without_an_error(
    dovecot, worker_env, tmp_path: Path
):
    env, size = worker_env, 120
    assert crmail(env, "init").returncode == 0
    ids = add_mailboxes(env, dovecot, 8, size)
    log = tmp_path / "worker.log"
    worker = start_worker(env, log, threads=8)
    try:
        queued = crmail(env, "mailbox", "sync", *ids, "--background")
        assert queued.returncode == 0, queued.stderr
        seen = wait_until_synced(env, size, [worker], within=120)
        assert worker.poll() is None, f"the worker died ({worker.returncode}): {trouble(log)}"
        assert trouble(log) == []
        assert [(state, held) for _, state, held in seen] == [("completed", size)] * len(ids)
    finally:
        stop(worker)
    assert verify_all(env, ids) == ""


@pytest.mark.soak
@pytest.mark.skipif(not POSTGRES_PASS, reason="scale-out runs in the PostgreSQL pass")
def test_soak_twenty_mailboxes_in_one_worker_then_two_workers_with_one_killed(
    dovecot, operator_env, tmp_path: Path
):
    size = 300
    with scale_out(operator_env) as env:
        assert crmail(env, "init").returncode == 0
        ids = add_mailboxes(env, dovecot, 20, size)

        # One worker, its threads syncing all twenty at once.
        log = tmp_path / "one-worker.log"
        worker = start_worker(env, log, threads=20)
        try:
            assert crmail(env, "mailbox", "sync", *ids, "--background").returncode == 0
            seen = wait_until_synced(env, size, [worker], within=600)
            assert worker.poll() is None, f"the worker died ({worker.returncode})"
            assert trouble(log) == []
            assert [(s, held) for _, s, held in seen] == [("completed", size)] * len(ids)
        finally:
            stop(worker)
        assert verify_all(env, ids) == ""

        # Twenty more mailboxes, two workers; one killed in the middle of its syncs.
        more = add_mailboxes(env, dovecot, 20, size, start=len(ids))
        logs = [tmp_path / "survivor.log", tmp_path / "killed.log"]
        survivor, doomed = (start_worker(env, path, threads=10) for path in logs)
        try:
            assert crmail(env, "mailbox", "sync", *more, "--background").returncode == 0
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not syncing_in(env, doomed.pid):
                time.sleep(0.02)
            assert syncing_in(env, doomed.pid), "the second worker synced nothing to kill"
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait()
            # The survivor's watcher takes the dead worker's mailboxes over at once; the
            # scheduler queues its interrupted syncs again at the next minute.
            seen = wait_until_synced(env, size, [survivor], within=600)
            assert survivor.poll() is None, f"the survivor died ({survivor.returncode})"
            assert trouble(logs[0]) == [] and trouble(logs[1]) == []
            assert [(s, held) for _, s, held in seen] == [("completed", size)] * len(ids + more)
        finally:
            stop(survivor)
            stop(doomed)
        assert verify_all(env, ids + more) == ""
