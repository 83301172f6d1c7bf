"""kill -9 in the middle of a sync, again and again: the mailbox still converges.

The operator's own commands against a real Dovecot and a SQLite data dir on disk:
`crmail init`, `crmail mailbox add`, `crmail mailbox sync` (killed with SIGKILL at
several moments, wherever the sync then is: writing a batch's pack, between the pack
and its commit, in the commit), then a last sync, `crmail mailbox verify` and
`crmail blobs verify`, which must agree, and `crmail blobs gc`, which leaves exactly the
packs the index names.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from crmail.mailboxes.drivers.tests.mailgen import fill_maildir
from tests.operator import crmail, crmail_script

pytestmark = pytest.mark.database_independent  # no database, or a data dir of its own

ADMIN = {
    "CRMAIL_ADMIN_EMAIL": "owner@example.com",
    "CRMAIL_ADMIN_PASSWORD": "violet tractor 1987 harbour",
}


def stored(db: Path) -> tuple[int, int]:
    """(locations, messages) as another process sees them now."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            locations = conn.execute("select count(*) from mailboxes_location").fetchone()[0]
            messages = conn.execute("select count(*) from mail_message").fetchone()[0]
            return locations, messages
    except sqlite3.OperationalError:
        return 0, 0


def start_sync(env: dict[str, str], mailbox_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [crmail_script(), "mailbox", "sync", mailbox_id],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.django_db
def test_kill_9_during_sync_then_resume_converges(dovecot, migrated_env):
    user, password = dovecot.new_user()
    messages = fill_maildir(dovecot, user, 1500, seed=7)
    dovecot.create_mailbox(user, "Projects")
    for n in range(20):
        dovecot.deliver(user, messages[n], "Projects")  # the same content in a second folder
    env = {**migrated_env, **ADMIN, "SECRET_FOR_TEST": password}
    assert crmail(env, "init").returncode == 0
    added = crmail(
        env,
        "mailbox",
        "add",
        "--user",
        ADMIN["CRMAIL_ADMIN_EMAIL"],
        "--protocol",
        "imap",
        "--host",
        "127.0.0.1",
        "--port",
        str(dovecot.imap_port),
        "--security",
        "none",
        "--login",
        user,
        "--password-env",
        "SECRET_FOR_TEST",
    )
    assert added.returncode == 0, added.stderr
    mailbox_id = added.stdout.strip()
    db = Path(env["CRMAIL_DATA_DIR"]) / "crmail.sqlite3"

    kills = 0
    for threshold in (1, 400, 900):
        proc = start_sync(env, mailbox_id)
        deadline = time.monotonic() + 120
        while stored(db)[0] < threshold and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    assert kills >= 2, "the sync finished before it could be killed; use more messages"

    final = crmail(env, "mailbox", "sync", mailbox_id)
    assert final.returncode == 0, final.stderr
    verify = crmail(env, "mailbox", "verify", mailbox_id)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    locations, distinct = stored(db)
    assert locations == 1520
    assert distinct == 1500  # the 20 copies in Projects are the same messages

    # Every message's bytes are in the blob store and check out; packs a killed sync
    # wrote but never committed are named by no row, and go once they are old.
    checked = crmail(env, "blobs", "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1500 messages" in checked.stdout
    blobs = Path(env["CRMAIL_DATA_DIR"]) / "blobs"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        named = {row[0] for row in conn.execute("select name from blobs_pack")}
    hours_ago = time.time() - 7200
    for path in blobs.rglob("*.pa*"):
        os.utime(path, (hours_ago, hours_ago))
    assert crmail(env, "blobs", "gc").returncode == 0
    assert {p.stem for p in blobs.rglob("*") if p.is_file()} == named
    assert crmail(env, "blobs", "verify").returncode == 0
