"""kill -9 at exact points of a first sync, then sync again: nothing lost, nothing twice.

Each case kills `crmail mailbox sync` where ``CRMAIL_FAILPOINT`` says (crmail.failpoints):
a pack half written, the pack durable but its transaction not begun, the batch's rows
written but not committed, parse results written but not committed. The next sync must
leave every message stored once, `crmail mailbox verify` and `crmail blobs verify`
agreeing, no message left unparsed, and `crmail blobs gc` keeping exactly the packs the
index names. Against a real Dovecot, with the file store and with an S3 server (moto's,
over HTTP). A first sync large enough for parsing workers leaves bodies to the job
worker (decision 064): a `crmail worker` killed while saving them, and the next one,
process every body once.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from crmail.mailboxes.drivers.tests.mailgen import fill_maildir
from tests.operator import crmail, crmail_script

pytestmark = pytest.mark.database_independent  # data dirs of their own

ADMIN = {
    "CRMAIL_ADMIN_EMAIL": "owner@example.com",
    "CRMAIL_ADMIN_PASSWORD": "violet tractor 1987 harbour",
}
MESSAGES = 240


@pytest.fixture(scope="module")
def prepared(dovecot, tmp_path_factory, migrated_database) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A data dir after `crmail init` and `crmail mailbox add`, never synced, to copy."""
    from tests.operator import operator_environment

    user, password = dovecot.new_user()
    fill_maildir(dovecot, user, MESSAGES, seed=11)
    env = {**operator_environment(tmp_path_factory.mktemp("template")), **ADMIN}
    env["SECRET_FOR_TEST"] = password
    migrated_database.into(env)
    assert crmail(env, "init").returncode == 0
    added = crmail(
        env,
        *("mailbox", "add", "--user", ADMIN["CRMAIL_ADMIN_EMAIL"], "--protocol", "imap"),
        *("--host", "127.0.0.1", "--port", str(dovecot.imap_port), "--security", "none"),
        *("--login", user, "--password-env", "SECRET_FOR_TEST"),
    )
    assert added.returncode == 0, added.stderr
    return {"env": env, "mailbox": added.stdout.strip()}


@pytest.fixture(scope="module")
def s3_url():  # type: ignore[no-untyped-def]
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def copy_of(prepared: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    shutil.copytree(prepared["env"]["CRMAIL_DATA_DIR"], data)
    return {**prepared["env"], "CRMAIL_DATA_DIR": str(data)}


def counts(env: dict[str, str]) -> tuple[int, int, int]:
    """(locations, messages, messages not parsed) as the database holds them."""
    db = Path(env["CRMAIL_DATA_DIR"]) / "crmail.sqlite3"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return (
            conn.execute("select count(*) from mailboxes_location").fetchone()[0],
            conn.execute("select count(*) from mail_message").fetchone()[0],
            conn.execute(
                "select count(*) from mail_message where parse_state = 'pending'"
            ).fetchone()[0],
        )


def named_packs(env: dict[str, str]) -> set[str]:
    db = Path(env["CRMAIL_DATA_DIR"]) / "crmail.sqlite3"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {row[0] for row in conn.execute("select name from blobs_pack")}


def crash_then_converge(env: dict[str, str], mailbox: str, point: str) -> None:
    killed = crmail(env, "mailbox", "sync", mailbox, CRMAIL_FAILPOINT=point)
    assert killed.returncode == -signal.SIGKILL, (point, killed.stdout, killed.stderr)
    final = crmail(env, "mailbox", "sync", mailbox)
    assert final.returncode == 0, final.stderr
    assert counts(env) == (MESSAGES, MESSAGES, 0)
    verify = crmail(env, "mailbox", "verify", mailbox)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    checked = crmail(env, "blobs", "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{MESSAGES} messages" in checked.stdout


# The first batch of the first sync, where each point is first passed.
POINTS = ["pack-write", "pack-written", "index-commit", "parse-save"]


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_each_point_of_a_first_sync_converges(prepared, tmp_path, point):
    env = copy_of(prepared, tmp_path)
    crash_then_converge(env, prepared["mailbox"], point)
    # What the killed run wrote and no row names goes once it is old; nothing else does.
    blobs = Path(env["CRMAIL_DATA_DIR"]) / "blobs"
    hours_ago = time.time() - 7200
    for path in blobs.rglob("*.pa*"):
        os.utime(path, (hours_ago, hours_ago))
    assert crmail(env, "blobs", "gc").returncode == 0
    assert {p.stem for p in blobs.rglob("*") if p.is_file()} == named_packs(env)
    assert crmail(env, "blobs", "verify").returncode == 0


@pytest.mark.parametrize("point", ["pack-write", "index-commit"])
def test_a_kill_with_the_s3_store_converges(prepared, tmp_path, s3_url, point):
    import boto3

    env = copy_of(prepared, tmp_path)
    bucket = f"crash-{point}"
    env.update(
        CRMAIL_BLOB_URL=f"s3://{bucket}/mail/",
        AWS_ENDPOINT_URL=s3_url,
        AWS_ACCESS_KEY_ID="crmail",
        AWS_SECRET_ACCESS_KEY="crmail-secret",
        AWS_DEFAULT_REGION="us-east-1",
    )
    client = boto3.client(
        "s3",
        endpoint_url=s3_url,
        aws_access_key_id="crmail",
        aws_secret_access_key="crmail-secret",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    crash_then_converge(env, prepared["mailbox"], point)
    objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    stored = {o["Key"].rsplit("/", 1)[-1].removesuffix(".pack") for o in objects}
    assert named_packs(env) <= stored


# Enough for the sync to hand parsing to worker processes (ingest.PIPELINE_MIN_MESSAGES).
LARGE = 420


def db_count(env: dict[str, str], sql: str) -> int:
    db = Path(env["CRMAIL_DATA_DIR"]) / "crmail.sqlite3"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute(sql).fetchone()[0])


def run_worker(env: dict[str, str], until: str, within: float = 90, **extra: str) -> int:
    """`crmail worker` until it exits (its return code) or ``until`` (SQL) counts 0; then
    it is stopped (SIGTERM) and 0 is returned."""
    worker = subprocess.Popen(
        [crmail_script(), "worker", "--workers", "1", "--no-watch"],
        env={**env, **extra},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + within
    try:
        while worker.poll() is None:
            if db_count(env, until) == 0:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=30)
                return 0
            assert time.monotonic() < deadline, "the worker did not process every body in time"
            time.sleep(0.2)
        return worker.returncode
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def large_mailbox(  # type: ignore[no-untyped-def]
    dovecot, migrated_database, tmp_path: Path, seed: int
) -> tuple[dict[str, str], str]:
    """A data dir with one mailbox of ``LARGE`` messages, never synced; and its id."""
    from tests.operator import operator_environment

    user, password = dovecot.new_user()
    fill_maildir(dovecot, user, LARGE, seed=seed)
    env = {**operator_environment(tmp_path), **ADMIN, "SECRET_FOR_TEST": password}
    migrated_database.into(env)
    assert crmail(env, "init").returncode == 0
    added = crmail(
        env,
        *("mailbox", "add", "--user", ADMIN["CRMAIL_ADMIN_EMAIL"], "--protocol", "imap"),
        *("--host", "127.0.0.1", "--port", str(dovecot.imap_port), "--security", "none"),
        *("--login", user, "--password-env", "SECRET_FOR_TEST"),
    )
    assert added.returncode == 0, added.stderr
    return env, added.stdout.strip()


@pytest.mark.parametrize("point", ["pack-written", "index-commit"])
def test_a_kill_while_a_large_first_sync_stores_header_fields_converges(
    dovecot, migrated_database, tmp_path, point
):
    """With parsing workers, a batch's rows carry their header fields, participants and
    thread in the transaction that stores them (decision 065): a kill leaves none of it."""
    env, mailbox = large_mailbox(dovecot, migrated_database, tmp_path, seed=13)
    killed = crmail(env, "mailbox", "sync", mailbox, CRMAIL_FAILPOINT=point)
    assert killed.returncode == -signal.SIGKILL, (killed.stdout, killed.stderr)
    final = crmail(env, "mailbox", "sync", mailbox)
    assert final.returncode == 0, final.stderr
    assert counts(env) == (LARGE, LARGE, 0)
    assert db_count(env, "select count(*) from mail_message where subject = ''") == 0
    # Nothing twice: no participant, no thread started for a row that was rolled back.
    twice = "select message_id, position from mail_participant group by 1, 2 having count(*) > 1"
    assert db_count(env, f"select count(*) from ({twice})") == 0
    empty = "select id from mail_thread where id not in (select thread_id from mail_message)"
    assert db_count(env, f"select count(*) from ({empty})") == 0
    verify = crmail(env, "mailbox", "verify", mailbox)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_worker_killed_while_saving_bodies_converges(dovecot, migrated_database, tmp_path):
    env, mailbox = large_mailbox(dovecot, migrated_database, tmp_path, seed=12)
    synced = crmail(env, "mailbox", "sync", mailbox)
    assert synced.returncode == 0, synced.stderr
    processing = "select count(*) from mail_message where parse_state = 'processing'"
    # Listed when the sync returns, bodies left to the job worker.
    assert db_count(env, processing) == LARGE
    assert db_count(env, "select count(*) from mail_message where subject = ''") == 0
    assert run_worker(env, processing, CRMAIL_FAILPOINT="bodies-save") == -signal.SIGKILL
    assert db_count(env, processing) == LARGE  # the killed batch left nothing half saved
    assert run_worker(env, processing) == 0
    assert db_count(env, "select count(*) from mail_message where parse_state = 'parsed'") == (
        LARGE
    )
    processed = "select count(distinct json_extract(data, '$.message_id')) from events_event"
    assert db_count(env, processed + " where kind = 'message.processed'") == LARGE
    assert db_count(env, "select count(*) from events_event where kind = 'message.processed'") == (
        LARGE
    )
    assert db_count(env, "select count(*) from mail_message where snippet = ''") == 0
    verify = crmail(env, "mailbox", "verify", mailbox)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    checked = crmail(env, "blobs", "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
