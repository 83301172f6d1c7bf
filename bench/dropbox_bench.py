"""The BCC Dropbox receiver: throughput, and the time from 250 to the message on its deal.

    python bench/dropbox_bench.py [--small 400] [--large 40] [--clients 20] [--paced 20]
                                  [--database sqlite|postgresql] [--out docs/benchmarks.md]

On a fresh data dir (``crmail init``; SQLite in WAL mode with the SQLite queue, the
default install, or ``--database postgresql``: a database of its own on 127.0.0.1:5432),
one user with 200 contacts, each with an open deal, and ``crmail serve`` run as an operator
runs it, with CRMAIL_DROPBOX_PORT set: the receiver and the embedded job workers (2, the
default) that file what it stored. Its sender and connection limits are raised for the
run (one sender sends everything).

``--clients`` SMTP clients (smtplib, one thread each, one connection each) send
``--small`` small messages (about 1.5 KB: a text part) and then ``--large`` 1 MB
messages (a text part and a 1 MB attachment of random bytes, which do not compress), each
to one of the contacts and Bcc'd to the dropbox. Throughput: messages stored (250) per
second of wall time, per size. Latency: for each message, from the client's 250 (wall
clock) to the ``created_at`` of its "BCC dropbox" link on the deal (written by the job
that files it, same machine clock); median and p95, per size. Under that load the
receiver's writes and the filing jobs share the database; ``--paced`` small messages sent
one at a time, half a second apart, on one connection, give the time a salesperson
Bcc'ing one message waits. The run fails when a message is not on its deal within a minute
of the last 250.
"""

from __future__ import annotations

import argparse
import os
import random
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

from bigstore import close_store, machine, open_store, pct

REPO = Path(__file__).resolve().parent.parent
MARK_START, MARK_END = "<!-- dropbox-bench:start -->", "<!-- dropbox-bench:end -->"
DOMAIN = "dropbox.bench.test"
SENDER = "admin@example.org"
CONTACTS = 200


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def setup() -> tuple[str, list[str]]:
    """The user's dropbox address and the contacts' addresses (each with an open deal)."""
    from django.conf import settings

    from crmail.crm.models import Contact, Deal, Pipeline, Stage
    from crmail.dropbox import addresses
    from crmail.people.models import User

    settings.CRMAIL_DROPBOX_DOMAIN = DOMAIN  # as the receiver's process has it
    user = User.objects.get(email=SENDER)
    pipeline = Pipeline.objects.get(is_default=True)
    stage = Stage.objects.get(pipeline=pipeline, name="Qualification")
    found = []
    for n in range(CONTACTS):
        contact = Contact.objects.create(owner=user, first_name="Pat", last_name=f"Buyer{n}")
        address = f"buyer{n}@customer{n % 17}.test"
        contact.emails.create(address=address, is_primary=True)
        Deal.objects.create(
            owner=user, name=f"Deal {n}", pipeline=pipeline, stage=stage, contact=contact
        )
        found.append(address)
    return addresses.full(addresses.current(user)), found


def message(n: int, to: str, attachment: bytes | None) -> tuple[str, bytes]:
    msg = EmailMessage()
    mid = f"<bench-{n}-{time.time_ns()}@example.org>"
    msg["From"] = f"Ada Admin <{SENDER}>"
    msg["To"] = to
    msg["Subject"] = f"Proposal {n}"
    msg["Message-ID"] = mid
    msg.set_content(
        "Hello,\n\nplease find our proposal for the next quarter below. " * 12 + f"\n#{n}\n"
    )
    if attachment is not None:
        msg.add_attachment(
            attachment, maintype="application", subtype="octet-stream", filename="offer.bin"
        )
    return mid.strip("<>"), msg.as_bytes(policy=SMTP_POLICY)


def send_all(
    port: int, dropbox: str, jobs: list[tuple[str, str, bytes]], clients: int, pace: float
) -> tuple[float, dict[str, float]]:
    """Send every (message id, recipient, bytes) over ``clients`` connections; (seconds,
    message id -> wall time of its 250)."""
    done: dict[str, float] = {}
    errors: list[str] = []
    lock = threading.Lock()
    queue = list(jobs)

    def work() -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
                while True:
                    with lock:
                        if not queue:
                            return
                        mid, _to, raw = queue.pop()
                    client.sendmail(SENDER, [dropbox], raw)
                    with lock:
                        done[mid] = time.time()
                    time.sleep(pace)
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"sending failed: {errors[:3]}")
    return time.perf_counter() - start, done


def filed_at(db: str, data: Path, ids: set[str]) -> dict[str, float]:
    """Message id -> when its "BCC dropbox" link on a deal was written (epoch seconds)."""
    sql = (
        "SELECT m.message_id, l.created_at FROM linking_link l"
        " JOIN mail_message m ON m.id = l.message_id"
        " WHERE l.reason = 'bcc_dropbox' AND l.module = 'deals'"
    )
    if db == "sqlite":
        with sqlite3.connect(f"file:{data / 'data' / 'crmail.sqlite3'}?mode=ro", uri=True) as c:
            rows = c.execute(sql).fetchall()
    else:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(sql)
            rows = cursor.fetchall()
    found = {}
    for mid, created in rows:
        if mid in ids:
            when = created if isinstance(created, datetime) else datetime.fromisoformat(created)
            found[mid] = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    return found


def wait_for_port(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"crmail serve stopped: {proc.communicate()[1].decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("the dropbox receiver did not listen within 90 s") from None
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(args: argparse.Namespace) -> str:
    rng = random.Random(7)
    data = open_store("dropbox", args.database)
    try:
        dropbox, contacts = setup()
        line = machine()
        from django.db import connections

        connections.close_all()
        env = {k: v for k, v in os.environ.items() if k != "CRMAIL_QUEUE_URL"}
        smtp_port, web_port = free_port(), free_port()
        env.update(
            CRMAIL_DROPBOX_DOMAIN=DOMAIN,
            CRMAIL_DROPBOX_HOST="127.0.0.1",
            CRMAIL_DROPBOX_PORT=str(smtp_port),
            CRMAIL_DROPBOX_SENDER_RATE="1000000",
            CRMAIL_DROPBOX_CONNECTION_LIMIT="1000000",
            CRMAIL_DROPBOX_MAX_SIZE=str(5 * 1024 * 1024),
            PYTHONPATH=str(REPO),
        )
        cli = "from crmail.config.cli import main; raise SystemExit(main())"
        server = subprocess.Popen(
            [sys.executable, "-c", cli, "serve", "--port", str(web_port), "--no-watch"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        results = []
        try:
            wait_for_port(server, smtp_port)
            big = rng.randbytes(1024 * 1024)
            for label, count, attachment, clients in (
                ("small (1.5 KB)", args.small, None, args.clients),
                ("1 MB", args.large, big, args.clients),
                ("small, one at a time", args.paced, None, 1),
            ):
                jobs = []
                for n in range(count):
                    to = contacts[n % len(contacts)]
                    mid, raw = message(len(results) * 100_000 + n, to, attachment)
                    jobs.append((mid, to, raw))
                log(f"sending {count} {label} messages over {clients} connections")
                pace = 0.5 if clients == 1 else 0.0
                seconds, accepted = send_all(smtp_port, dropbox, jobs, clients, pace)
                deadline = time.time() + 60
                while True:
                    filed = filed_at(args.database, data, set(accepted))
                    if len(filed) == len(accepted) or time.time() > deadline:
                        break
                    time.sleep(0.2)
                if len(filed) != len(accepted):
                    raise SystemExit(f"{len(accepted) - len(filed)} messages never reached a deal")
                latency = [max(0.0, filed[m] - accepted[m]) for m in accepted]
                median = statistics.median(latency)
                results.append((label, count, count / seconds, median, latency))
                log(f"{label}: {count / seconds:.1f} msg/s, median {median:.3f} s")
        finally:
            server.terminate()
            server.communicate(timeout=60)
    finally:
        close_store(data, keep=False)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(
        f"| {label} | {count} | {'paced' if 'one at a time' in label else f'{rate:.1f}'} |"
        f" {median * 1000:.0f} ms | {pct(lat, 0.95):.0f} ms |"
        for label, count, rate, median, lat in results
    )
    return (
        f"{MARK_START}\n### {args.database} ({when})\n\n"
        f"Machine: {line}. `crmail serve` with its 2 job workers; {args.clients} SMTP "
        "clients at once, then one message at a time (half a second apart).\n\n"
        "| messages | sent | stored (250) per second | 250 → on its deal, median | p95 |\n"
        "| --- | --- | --- | --- | --- |\n"
        f"{rows}\n{MARK_END}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=400)
    parser.add_argument("--large", type=int, default=40)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--paced", type=int, default=20)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--out", type=Path, help="write the results into this Markdown file")
    args = parser.parse_args()
    section = run(args)
    print(section)
    if args.out:
        text = args.out.read_text()
        if MARK_START in text:
            before, rest = text.split(MARK_START, 1)
            text = before + section + rest.split(MARK_END, 1)[1].lstrip("\n")
        else:
            text = text.rstrip("\n") + "\n\n" + section
        args.out.write_text(text)


if __name__ == "__main__":
    main()
