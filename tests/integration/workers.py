"""`crmail worker` processes as an operator runs them, and what to check of their runs.

Mailboxes filled straight into Dovecot's Maildir, workers started with their log kept
in a file, the state of every mailbox read from the database, and the lines of a
worker's log that show something went wrong.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis

from tests.harness.dovecot import VMAIL_ID, DovecotServer
from tests.operator import crmail, crmail_script
from tests.testenv import PG_URL

REDIS_URL = "redis://127.0.0.1:6379"
ADMIN = {"CRMAIL_ADMIN_EMAIL": "admin@example.com", "CRMAIL_ADMIN_PASSWORD": "quiet harbour 4412"}

# Each mailbox's state and how many messages it holds.
STATES = """
    select m.id, m.state, count(distinct l.message_id) from mailboxes_mailbox m
    left join mailboxes_location l on l.mailbox_id = m.id group by m.id, m.state order by m.id
"""

# What in a worker's log means a job or a sync went wrong, or the process itself did.
TROUBLE = re.compile(
    r"Traceback|\b(ERROR|CRITICAL)\b|Error:|Segmentation fault|core dumped|Fatal Python",
)


@contextmanager
def scale_out(
    operator_env: dict[str, str], template: str | None = None
) -> Iterator[dict[str, str]]:
    """An environment with a fresh PostgreSQL database and a Redis database of its own
    (the database a copy of ``template``, when given: one already migrated)."""
    name = f"crmail_workers_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(f"{PG_URL}/postgres", autocommit=True)
        redis.Redis.from_url(REDIS_URL).ping()
    except (psycopg.Error, redis.RedisError) as exc:
        pytest.fail(f"PostgreSQL and Redis must run for this test: {exc}")
    db_index = random.randint(1, 15)
    queue = redis.Redis.from_url(f"{REDIS_URL}/{db_index}")
    queue.flushdb()
    admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
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


WORDS = [
    "quote",
    "order",
    "invoice",
    "meeting",
    "proposal",
    "renewal",
    "contract",
    "seats",
    "licence",
    "discount",
    "delivery",
    "schedule",
    "support",
    "account",
    "manager",
    "thanks",
    "regards",
    "please",
    "attached",
    "figures",
]


def message(n: int, size: int, rng: random.Random) -> bytes:
    """A plain-text business message of about ``size`` bytes, numbered ``n``."""
    head = (
        f"From: Client {n % 53} <client{n % 53}@example.org>\r\nTo: rep@example.com\r\n"
        f"Subject: Order {n}\r\nMessage-ID: <order-{n}@example.org>\r\n"
        f"Date: Mon, 2 Nov 2026 10:{n % 60:02d}:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    lines = []
    while sum(len(line) for line in lines) < size:
        lines.append(" ".join(rng.choices(WORDS, k=12)) + f" {rng.randint(0, 99999)}\r\n")
    return (head + "".join(lines)).encode()


def fill(dovecot: DovecotServer, user: str, count: int, *, first: int, seed: int) -> None:
    """Put ``count`` text messages (1-30 kB, numbered from ``first``) in ``user``'s Inbox,
    written straight into the Maildir."""
    rng = random.Random(seed)
    cur = dovecot.user_home(user) / "Maildir" / "cur"
    cur.mkdir(parents=True, exist_ok=True)
    base = int(time.time()) - count
    for n in range(count):
        raw = message(first + n, rng.randint(1_000, 30_000), rng)
        path = cur / f"{base + n}.M{n:06d}P1.gen,S={len(raw)},W={len(raw)}:2,"
        path.write_bytes(raw)
        os.chown(path, VMAIL_ID, VMAIL_ID)
    for folder in (cur.parent, cur):
        os.chown(folder, VMAIL_ID, VMAIL_ID)
    dovecot.doveadm("force-resync", "-u", user, "INBOX")


# Users and their mailboxes in one process: `crmail user add` and `crmail mailbox add` call
# these actions, each in a process of its own that takes a second or two to start.
ADD_MAILBOXES = """
import json, sys
import django
django.setup()
from crmail.mailboxes.actions import connect_mailbox
from crmail.people.actions import create_user, first_admin

ids = []
for n, login, password, port in json.load(sys.stdin):
    owner = create_user(f"rep{n}@example.com", name=f"Rep {n}")
    fields = {"email": owner.email, "protocol": "imap", "host": "127.0.0.1", "port": port,
              "security": "none", "login": login, "secret": password}
    ids.append(connect_mailbox(first_admin(), owner, fields, test=True).pk)
print(json.dumps(ids))
"""


def add_mailboxes(
    env: dict[str, str], dovecot: DovecotServer, count: int, size: int, *, start: int = 0
) -> list[str]:
    """``count`` users (numbered from ``start``) with a mailbox of ``size`` messages each,
    connected; their ids."""
    accounts = []
    for n in range(start, start + count):
        login, password = dovecot.new_user()
        fill(dovecot, login, size, first=n * 100_000, seed=n)
        accounts.append((n, login, password, dovecot.imap_port))
    added = subprocess.run(
        [sys.executable, "-c", ADD_MAILBOXES],
        env={**env, "DJANGO_SETTINGS_MODULE": "crmail.config.settings"},
        input=json.dumps(accounts),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert added.returncode == 0, added.stderr
    return [str(pk) for pk in json.loads(added.stdout)]


def start_worker(env: dict[str, str], log: Path, threads: int = 2) -> subprocess.Popen[bytes]:
    """`crmail worker` with ``threads`` job threads (and its IDLE watcher), logging to ``log``."""
    with log.open("ab") as stream:
        return subprocess.Popen(
            [crmail_script(), "worker", "--workers", str(threads)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def states(env: dict[str, str]) -> list[tuple[int, str, int]]:
    """(id, state, messages) of every mailbox, as another process sees them now."""
    url = env.get("CRMAIL_DATABASE_URL", "")
    if url.startswith("postgres"):
        with psycopg.connect(url, autocommit=True) as conn:
            return [tuple(row) for row in conn.execute(STATES).fetchall()]  # type: ignore[misc]
    db = Path(env["CRMAIL_DATA_DIR"]) / "crmail.sqlite3"
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(STATES).fetchall()
    except sqlite3.OperationalError:
        return []


def syncing_in(env: dict[str, str], pid: int) -> list[int]:
    """Mailboxes whose sync process ``pid`` is running now, with some of its mail stored."""
    url = env["CRMAIL_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select l.name from jobs_lease l join mailboxes_mailbox m "
            "on l.name = 'mailbox-sync:' || m.id where l.holder like %s "
            "and l.expires_at > now() and m.progress_done > 0",
            [f"%:{pid}#%"],
        ).fetchall()
    return [int(name.rpartition(":")[2]) for (name,) in rows]


def wait_until_synced(
    env: dict[str, str],
    size: int,
    workers: list[subprocess.Popen[bytes]],
    *,
    within: float,
) -> list[tuple[int, str, int]]:
    """Wait until every mailbox is completed with ``size`` messages (or a worker died, or
    ``within`` seconds passed); returns the last states seen."""
    deadline = time.monotonic() + within
    seen = states(env)
    while time.monotonic() < deadline and all(w.poll() is None for w in workers):
        if seen and all(state == "completed" and held == size for _, state, held in seen):
            break
        time.sleep(0.25)
        seen = states(env)
    return seen


def trouble(log: Path) -> list[str]:
    """The lines of a worker's log that say something went wrong."""
    return [line for line in log.read_text(errors="replace").splitlines() if TROUBLE.search(line)]


def verify_all(env: dict[str, str], ids: list[str]) -> str:
    """`crmail mailbox verify` of every mailbox in ``ids`` at once: "" when all agree with
    their servers, else what it printed."""
    verified = crmail(env, "mailbox", "verify", *ids)
    if verified.returncode == 0 and f"All {len(ids)} mailboxes agree" in verified.stdout:
        return ""
    return verified.stdout + verified.stderr
