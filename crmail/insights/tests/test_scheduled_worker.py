"""Mail sent later, end to end: ``crmail worker`` processes on a data dir fresh from
``crmail init`` (SQLite database and queue, the defaults) send a scheduled email to a
real SMTP server at its time and once, whatever happens to the workers meanwhile: one
killed (-9) before its time, none running at its time (the queue kept, or lost), one
killed while sending it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from tests.harness.smtp import ReceivedMessage, SmtpSink
from tests.integration.workers import ADMIN, start_worker, stop, trouble
from tests.operator import crmail, free_port, operator_environment

pytestmark = pytest.mark.database_independent  # a data dir of its own

# The administrator's mailbox sends through the test's SMTP server (its incoming server
# is a closed port); an email is scheduled ``seconds`` from now. Prints the scheduled
# row's id and its time (a UNIX timestamp).
SCHEDULE = """
import json, sys
from datetime import timedelta
import django
django.setup()
from django.utils import timezone
from crmail.insights import scheduling
from crmail.mail.compose import Draft
from crmail.mailboxes.actions import connect_mailbox
from crmail.people.actions import first_admin

smtp_port, imap_port, seconds = json.load(sys.stdin)
admin = first_admin()
fields = {"email": admin.email, "protocol": "imap", "host": "127.0.0.1", "port": imap_port,
          "security": "none", "login": admin.email, "secret": "unused",
          "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_security": "none",
          "smtp_same_credentials": False, "store_sent_on_server": False}
mailbox = connect_mailbox(admin, admin, fields, test=False)
draft = Draft(sender=admin.email, to=["ann@acme.example"], subject="The offer",
              text="As promised, the offer.")
row = scheduling.schedule(admin, draft, mailbox=mailbox,
                          send_at=timezone.now() + timedelta(seconds=seconds))
print(json.dumps([row.pk, row.send_at.timestamp()]))
"""
LATE = 3  # seconds a send may take after its time (the queue is looked at every second)
QUIET = 3  # seconds to wait for a second copy that should never come


class TimedSink(SmtpSink):
    """The SMTP sink, noting when each message arrived (``time.time()``); with ``pause``
    set, it takes that many seconds to answer a message's end (``receiving`` is set then)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[float] = []
        self.pause = 0.0
        self.receiving = threading.Event()

    def _record(self, message: ReceivedMessage) -> None:
        self.receiving.set()
        time.sleep(self.pause)  # a slow server: the sender waits for its answer
        self.arrived.append(time.time())
        super()._record(message)


@pytest.fixture
def sink():  # type: ignore[no-untyped-def]
    with TimedSink() as started:
        yield started


@pytest.fixture(scope="module")
def initialised(tmp_path_factory, migrated_database) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The environment of a data dir just after `crmail init`, to copy."""
    env = {**operator_environment(tmp_path_factory.mktemp("template")), **ADMIN}
    migrated_database.into(env)
    init = crmail(env, "init")
    assert init.returncode == 0, init.stderr
    return env


@pytest.fixture
def env(initialised, tmp_path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A copy of the initialised data dir for this test."""
    data = tmp_path / "data"
    shutil.copytree(initialised["CRMAIL_DATA_DIR"], data)
    return {**initialised, "CRMAIL_DATA_DIR": str(data)}


def schedule_in(env: dict[str, str], sink: SmtpSink, seconds: float) -> tuple[int, float]:
    """One email scheduled ``seconds`` from now through ``sink``: its row's id and time."""
    scheduled = subprocess.run(
        [sys.executable, "-c", SCHEDULE],
        env={**env, "DJANGO_SETTINGS_MODULE": "crmail.config.settings"},
        input=json.dumps([sink.port, free_port(), seconds]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert scheduled.returncode == 0, scheduled.stderr
    pk, send_at = json.loads(scheduled.stdout)
    return int(pk), float(send_at)


@contextmanager
def database(env: dict[str, str]) -> Iterator[sqlite3.Connection]:
    """The data dir's database, as another process sees it (each statement committed)."""
    db = Path(env["CRMAIL_DATA_DIR"]) / "crmail.sqlite3"
    with closing(sqlite3.connect(db, timeout=30, isolation_level=None)) as conn:
        yield conn


def scheduled_state(env: dict[str, str], pk: int) -> tuple[str, str, bool]:
    """(state, error, linked to its sent message) of scheduled email ``pk``, as stored."""
    with database(env) as conn:
        state, error, sent = conn.execute(
            "select state, error, sent_id from insights_scheduledsend where id = ?", [pk]
        ).fetchone()
    return state, error, sent is not None


def wait_until_leading(env: dict[str, str], worker: subprocess.Popen[bytes]) -> None:
    """Wait until ``worker``'s scheduler runs: it holds the periodic-jobs lease."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert worker.poll() is None, "the worker stopped"
        with database(env) as conn:
            row = conn.execute("select holder from jobs_lease where name = 'periodic'").fetchone()
        if row and row[0].endswith(f":{worker.pid}"):
            return
        time.sleep(0.1)
    pytest.fail("the worker did not start its scheduler within 20 s")


def kill(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def test_a_scheduled_email_goes_at_its_time_once_though_the_worker_was_killed(env, sink, tmp_path):
    log = tmp_path / "worker.log"
    first = start_worker(env, log, threads=1)
    try:
        wait_until_leading(env, first)
        pk, send_at = schedule_in(env, sink, 8)
        time.sleep(1)  # its scheduler looks at the queue every second
        kill(first)
        assert time.time() < send_at
        second = start_worker(env, log, threads=1)
        try:
            sink.wait_for(1, timeout=send_at + LATE - time.time())
            time.sleep(QUIET)
        finally:
            stop(second)
    finally:
        kill(first)

    assert len(sink.messages) == 1
    assert send_at <= sink.arrived[0] < send_at + LATE
    assert sink.messages[0].rcpt_tos == ["ann@acme.example"]
    assert scheduled_state(env, pk) == ("sent", "", True)
    assert trouble(log) == []


@pytest.mark.parametrize("queue", ["kept", "lost"])
def test_an_email_due_while_no_worker_ran_goes_once_when_one_starts(env, sink, tmp_path, queue):
    # Its job waits in the queue, and the new worker's first minute finds it due too: the
    # two race, one sends. A queue that lost the job (its file deleted) leaves the minute.
    pk, send_at = schedule_in(env, sink, 1)
    if queue == "lost":
        for file in Path(env["CRMAIL_DATA_DIR"]).glob("queue.sqlite3*"):
            file.unlink()
    time.sleep(max(0.0, send_at - time.time()))
    log = tmp_path / "worker.log"
    worker = start_worker(env, log, threads=2)
    try:
        started = time.time()
        sink.wait_for(1, timeout=20)
        time.sleep(QUIET)
    finally:
        stop(worker)

    assert len(sink.messages) == 1
    assert started < sink.arrived[0] < started + 20
    assert scheduled_state(env, pk) == ("sent", "", True)
    assert trouble(log) == []


def test_an_email_whose_worker_died_sending_it_is_never_sent_again(env, sink, tmp_path):
    # Killed once the server took it, before the transaction that records it sent commits.
    log = tmp_path / "worker.log"
    first = start_worker({**env, "CRMAIL_FAILPOINT": "index-commit"}, log, threads=1)
    try:
        wait_until_leading(env, first)
        pk, send_at = schedule_in(env, sink, 3)
        sink.wait_for(1, timeout=send_at + LATE - time.time())
        first.wait(timeout=10)
    finally:
        kill(first)
    assert first.returncode == -signal.SIGKILL
    assert scheduled_state(env, pk)[0] == "sending"

    # The next worker cannot know whether the server took it: while its claim holds,
    # nobody touches it; once lapsed, it is marked not sent, saying so.
    second = start_worker(env, log, threads=1)
    try:
        wait_until_leading(env, second)
        time.sleep(QUIET)
        assert scheduled_state(env, pk)[0] == "sending"
    finally:
        stop(second)
    with database(env) as conn:  # ten minutes later
        conn.execute(
            "update insights_scheduledsend set claimed_until = ? where id = ?",
            ["2000-01-01 00:00:00", pk],
        )
    third = start_worker(env, log, threads=1)
    try:
        wait_until_leading(env, third)
        deadline = time.monotonic() + 10
        while scheduled_state(env, pk)[0] == "sending" and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop(third)

    state, error, sent = scheduled_state(env, pk)
    assert (state, sent) == ("failed", False)
    assert "may or may not have gone out" in error
    assert len(sink.messages) == 1
    assert trouble(log) == []


def test_a_worker_stopped_while_sending_finishes_the_send_first(env, sink, tmp_path):
    # SIGTERM is how service managers (systemd, docker stop) stop a worker.
    sink.pause = 3
    log = tmp_path / "worker.log"
    worker = start_worker(env, log, threads=1)
    try:
        wait_until_leading(env, worker)
        pk, send_at = schedule_in(env, sink, 2)
        assert sink.receiving.wait(timeout=send_at + LATE - time.time())
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)
    finally:
        kill(worker)

    assert worker.returncode == 0
    assert scheduled_state(env, pk) == ("sent", "", True)
    assert len(sink.messages) == 1
    assert "The worker has stopped." in log.read_text()
    assert trouble(log) == []
