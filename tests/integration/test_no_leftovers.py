"""kill -9 of a sync leaves nothing running: its parsing workers and multiprocessing's
resource tracker go with it.

`crmail mailbox sync` against a real Dovecot with enough mail to start the parsing worker,
killed with SIGKILL while it runs; then no process it started may remain. Every process
the sync starts inherits its environment, so a marker there finds them after they lose
their parent.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from crmail.mailboxes.drivers.tests.mailgen import fill_maildir
from tests.operator import crmail, crmail_script

pytestmark = pytest.mark.database_independent  # no database, or a data dir of its own

ADMIN = {
    "CRMAIL_ADMIN_EMAIL": "owner@example.com",
    "CRMAIL_ADMIN_PASSWORD": "violet tractor 1987 harbour",
}
MARKER = "CRMAIL_TEST_LEFTOVER_MARKER"


def stored(db: Path) -> int:
    """Locations stored so far, as another process sees them."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("select count(*) from mailboxes_location").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def parsing_worker(pids: set[int]) -> bool:
    """True when one of ``pids`` is a multiprocessing worker (not the resource tracker)."""
    for pid in pids:
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def marked(value: str, parent: int) -> set[int]:
    """Running processes carrying ``MARKER=value`` or started by ``parent``."""
    wanted = f"{MARKER}={value}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if state == "Z":  # exited, waiting for its parent to read the status
            continue
        if wanted in environ.split(b"\0") or int(ppid) == parent:
            found.add(int(entry.name))
    return found


@pytest.mark.django_db
def test_no_process_of_a_killed_sync_survives_it(dovecot, migrated_env):
    user, password = dovecot.new_user()
    fill_maildir(dovecot, user, 1200, seed=11)
    env = {**migrated_env, **ADMIN, "SECRET_FOR_TEST": password}
    assert crmail(env, "init").returncode == 0
    added = crmail(
        env,
        *("mailbox", "add", "--user", ADMIN["CRMAIL_ADMIN_EMAIL"], "--protocol", "imap"),
        *("--host", "127.0.0.1", "--port", str(dovecot.imap_port), "--security", "none"),
        *("--login", user, "--password-env", "SECRET_FOR_TEST"),
    )
    assert added.returncode == 0, added.stderr
    marker = uuid.uuid4().hex
    db = Path(env["CRMAIL_DATA_DIR"]) / "crmail.sqlite3"
    sync = subprocess.Popen(
        [crmail_script(), "mailbox", "sync", added.stdout.strip()],
        env={**env, MARKER: marker},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while sync.poll() is None and time.monotonic() < deadline:
            if parsing_worker(marked(marker, sync.pid)) and stored(db) >= 500:
                break  # its parsing worker runs, and has a first batch to parse
            time.sleep(0.01)
        assert sync.poll() is None, "the sync ended before it started a parsing worker"
        started = marked(marker, sync.pid) - {sync.pid}
        os.kill(sync.pid, signal.SIGKILL)
        sync.wait(timeout=30)
        left = marked(marker, sync.pid)
        print("AT KILL", left, [Path(f"/proc/{pid}/cmdline").read_bytes()[:150] for pid in left])
        deadline = time.monotonic() + 30
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = marked(marker, sync.pid)
        print("LEFT", time.monotonic() - deadline + 30, started, left)
        assert started
        assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left]
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait()
        for pid in marked(marker, sync.pid):
            os.kill(pid, signal.SIGKILL)
