"""The installed ``crmail`` script on a fresh data dir, as an operator would run it.

Each test starts from an environment without the test run's settings, so the defaults
(SQLite database and queue in the data dir, a generated secret key) are what is
exercised; from an empty directory where `crmail init` on a fresh data dir is the subject,
else from one whose database is migrated already (``migrated_env``), which `crmail init`
then completes.
"""

from __future__ import annotations

import re
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.operator import crmail, crmail_script, free_port, wait_until_serving

pytestmark = pytest.mark.database_independent  # no database, or a data dir of its own

ADMIN = "owner@example.com"
PASSWORD = "violet tractor 1987 harbour"


def test_init_user_token_and_check_on_a_fresh_data_dir(operator_env):
    data_dir = Path(operator_env["CRMAIL_DATA_DIR"])

    first = crmail(operator_env, "init")
    assert first.returncode == 1
    assert "CRMAIL_ADMIN_EMAIL is not set" in first.stderr
    assert "Traceback" not in first.stderr

    admin_env = {"CRMAIL_ADMIN_EMAIL": ADMIN, "CRMAIL_ADMIN_PASSWORD": PASSWORD}
    second = crmail(operator_env, "init", **admin_env)
    assert second.returncode == 0, second.stderr
    assert f"Administrator {ADMIN} added" in second.stdout
    assert (data_dir / "crmail.sqlite3").exists() and (data_dir / "secret_key").exists()
    assert data_dir.stat().st_mode & 0o077 == 0

    again = crmail(operator_env, "init", **admin_env)
    assert again.returncode == 0, again.stderr
    assert "Database is up to date" in again.stdout
    assert f"Administrator {ADMIN} exists" in again.stdout
    assert PASSWORD not in again.stdout + again.stderr

    added = crmail(
        operator_env,
        "user",
        "add",
        "rep@example.com",
        "--name",
        "Rae Rep",
        "--manager",
        ADMIN,
        "--password-env",
        "REP_PASSWORD",
        REP_PASSWORD="orange kayak 2231 meadow",
    )
    assert added.returncode == 0, added.stderr

    token = crmail(operator_env, "token", "create", "rep@example.com")
    assert token.returncode == 0, token.stderr
    assert re.fullmatch(r"crm_[\w-]{20,}\n", token.stdout)

    check = crmail(operator_env, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "All good: Job queue reachable: SQLite at" in check.stdout
    assert "Everything is in order." in check.stdout
    secret = (data_dir / "secret_key").read_text().strip()
    assert secret not in check.stdout + check.stderr


def modes(data_dir: Path) -> dict[str, str]:
    """Each file and folder under ``data_dir`` with its permission bits, as ``ls`` shows."""
    return {
        str(path.relative_to(data_dir)) or ".": oct(path.stat().st_mode & 0o777)
        for path in [data_dir, *data_dir.rglob("*")]
    }


def test_every_file_in_the_data_dir_is_for_its_owner_alone(operator_env):
    # The database holds everyone's mail: no other user of the machine may read it, nor
    # the queue, the keys, or the database's write-ahead log.
    data_dir = Path(operator_env["CRMAIL_DATA_DIR"])
    admin_env = {"CRMAIL_ADMIN_EMAIL": ADMIN, "CRMAIL_ADMIN_PASSWORD": PASSWORD}
    assert crmail(operator_env, "init", **admin_env).returncode == 0
    assert crmail(operator_env, "keys", "check").returncode == 0  # makes encryption_keys
    with sqlite3.connect(data_dir / "crmail.sqlite3") as db:  # while open: -wal and -shm
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE scratch (n integer)")
        files = modes(data_dir)
    assert {"crmail.sqlite3-wal", "crmail.sqlite3-shm", "encryption_keys"} <= set(files)
    assert {"queue.sqlite3", "secret_key", "crmail.sqlite3"} <= set(files)
    wanted = {name: "0o700" if (data_dir / name).is_dir() else "0o600" for name in files}
    assert files == wanted


def test_init_makes_an_older_data_dirs_files_private(migrated_env):
    data_dir = Path(migrated_env["CRMAIL_DATA_DIR"])
    admin_env = {"CRMAIL_ADMIN_EMAIL": ADMIN, "CRMAIL_ADMIN_PASSWORD": PASSWORD}
    assert crmail(migrated_env, "init", **admin_env).returncode == 0
    for name in ("crmail.sqlite3", "queue.sqlite3"):
        (data_dir / name).chmod(0o644)  # as earlier versions created them
    data_dir.chmod(0o755)
    check = crmail(migrated_env, "check")
    assert "3 files or folders in the data dir can be read by other users" in check.stderr
    again = crmail(migrated_env, "init", **admin_env)
    assert again.returncode == 0, again.stderr
    assert set(modes(data_dir).values()) == {"0o600", "0o700"}
    assert modes(data_dir)["."] == "0o700"
    assert "can be read by other users" not in crmail(migrated_env, "check").stderr


def test_commands_before_init_say_to_run_it(operator_env):
    result = crmail(operator_env, "user", "list")
    assert result.returncode == 1
    assert "Run `crmail init` first." in result.stderr
    assert "Traceback" not in result.stderr


def test_a_database_missing_one_migration_is_refused_until_init(migrated_env):
    data_dir = Path(migrated_env["CRMAIL_DATA_DIR"])
    admin_env = {"CRMAIL_ADMIN_EMAIL": ADMIN, "CRMAIL_ADMIN_PASSWORD": PASSWORD}
    assert crmail(migrated_env, "init", **admin_env).returncode == 0
    assert crmail(migrated_env, "mailbox", "list").returncode == 0
    with sqlite3.connect(data_dir / "crmail.sqlite3") as db:  # as if an upgrade added one
        db.execute(
            "DELETE FROM django_migrations WHERE id = "
            "(SELECT max(id) FROM django_migrations WHERE app = 'mailboxes')"
        )
    result = crmail(migrated_env, "mailbox", "list")
    assert result.returncode == 1
    assert "The database is not set up yet (1 migrations to apply)." in result.stderr
    assert "1 database migrations are not applied" in crmail(migrated_env, "check").stdout


def lease_holder(data_dir: Path) -> str | None:
    with sqlite3.connect(data_dir / "crmail.sqlite3") as db:
        row = db.execute("SELECT holder FROM jobs_lease WHERE name = 'periodic'").fetchone()
    return row[0] if row else None


def test_serve_answers_runs_its_job_consumer_and_stops_on_sigterm(migrated_env):
    data_dir = Path(migrated_env["CRMAIL_DATA_DIR"])
    init = crmail(migrated_env, "init", CRMAIL_ADMIN_EMAIL=ADMIN, CRMAIL_ADMIN_PASSWORD=PASSWORD)
    assert init.returncode == 0, init.stderr
    port = free_port()
    server = subprocess.Popen(
        [crmail_script(), "serve", "--port", str(port), "--workers", "1"],
        env=migrated_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(server, port)

        # The embedded consumer's scheduler takes the periodic-jobs lease as it starts.
        deadline = time.monotonic() + 10
        while lease_holder(data_dir) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (lease_holder(data_dir) or "").endswith(f":{server.pid}")

        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert f"crmail is running on http://127.0.0.1:{port} — sign in as {ADMIN}" in out
    assert "crmail has stopped." in out
    assert "Traceback" not in err
    assert lease_holder(data_dir) is None  # released, so another process may take over


def test_serve_on_a_taken_port_says_so(migrated_env):
    init = crmail(migrated_env, "init", CRMAIL_ADMIN_EMAIL=ADMIN, CRMAIL_ADMIN_PASSWORD=PASSWORD)
    assert init.returncode == 0, init.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = crmail(migrated_env, "serve", "--port", str(port))
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr
