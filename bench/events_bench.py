"""Events through the outbox, per second, and what recording them adds to a first sync.

    python bench/events_bench.py [--events 20000] [--webhook-events 3000] [--batch 500]
                                 [--backends sqlite,postgresql] [--sync 4000] [--runs 3]
                                 [--compare TREE --compare-label TEXT] [--out docs/benchmarks.md]

Throughput, for each backend (a child process per measurement, a fresh migrated crmail):
``sqlite`` is the default install (SQLite WAL, huey's SQLite queue in the data dir);
``postgresql`` is a database of its own on the local PostgreSQL with the queue on the
local Redis (``CRMAIL_QUEUE_URL=redis://127.0.0.1:6379/13``; the run flushes only its own
queue). N ``record.created`` events are recorded in transactions of ``--batch`` (each
commit queues a dispatch job per consumer, as in production), then handed over the way the
``events.dispatch`` job does (sequencing included):

- to a no-op consumer registered for the bench;
- to the ``webhooks`` consumer with one endpoint (rows written), then sent by the
  ``webhooks.send`` job's function, signed, to a receiver in another process on loopback
  (a threaded http.server answering 200; it counts the calls, the bench checks the count).

Sync cost (``--sync N``, needs root and Dovecot like bench/sync_bench.py, whose helpers it
uses): crmail's first sync of N generated mixed messages, in turns with events recorded and
with ``outbox.record_many`` replaced by a no-op in the syncing child (``crmail_run.py
--no-events``, a bench-only switch; linking, a consumer of the outbox, then does not run
either). With ``--compare TREE`` (a copy of an earlier commit, e.g. the one before the
outbox, named by ``--compare-label``), that crmail's first sync runs in the same rounds too;
the order of the three changes from round to round. Only the syncing process is timed
(``open_driver`` + ``sync_mailbox``): the consumers that are not eager run later as jobs.

With ``--out``, the tables replace what lies between ``<!-- events-bench:start -->`` and
``<!-- events-bench:end -->`` in that file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MARK_START, MARK_END = "<!-- events-bench:start -->", "<!-- events-bench:end -->"
PG = "postgresql://127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/13"

RECEIVER = r"""
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
count = 0
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            count += 1
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def do_GET(self):
        body = str(count).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
print(s.server_address[1], flush=True)
s.serve_forever()
"""


# -- the child: one measurement in a fresh crmail ------------------------------------------


def child(args: argparse.Namespace) -> None:
    from crmail.config.commands.base import setup_django

    setup_django()
    from django.conf import settings
    from django.db import transaction

    from crmail.events import dispatch, outbox
    from crmail.events.kinds import RecordCreated
    from crmail.events.registry import consumer
    from crmail.people.actions import first_admin

    consumer("bench-noop", ["record.created"], batch=500)(lambda batch: None)
    dispatch.start_all()
    n, batch = args.events, args.batch

    endpoint = None
    if args.child == "webhook":
        from crmail.webhooks import actions

        endpoint, _ = actions.create_endpoint(
            f"http://127.0.0.1:{args.receiver_port}/hook", ["record.created"], by=first_admin()
        )

    t0 = time.perf_counter()
    for start in range(0, n, batch):
        with transaction.atomic():
            outbox.record_many(
                [
                    RecordCreated(module="contacts", record_id=i)
                    for i in range(start, min(start + batch, n))
                ]
            )
    t1 = time.perf_counter()
    out: dict[str, Any] = {"events": n, "record_s": t1 - t0}
    if args.child == "noop":
        handled = dispatch.dispatch("bench-noop")
        out["dispatch_s"] = time.perf_counter() - t1
        assert handled == n, handled
    else:
        from crmail.webhooks import deliver
        from crmail.webhooks.models import Delivery, State

        dispatch.dispatch("webhooks")
        t2 = time.perf_counter()
        out["dispatch_s"] = t2 - t1
        assert endpoint is not None
        while deliver.send_due(endpoint.pk):
            pass
        out["send_s"] = time.perf_counter() - t2
        out["delivered"] = Delivery.objects.filter(state=State.DELIVERED).count()
    settings.HUEY.flush()  # the dispatch jobs the commits queued: this run's queue only
    print(json.dumps(out))


def run_child(kind: str, backend: str, args: argparse.Namespace, port: int = 0) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="crmail-events-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMAIL_")}
    env.update(
        CRMAIL_DATA_DIR=str(work / "data"),
        CRMAIL_LOG_LEVEL="WARNING",
        CRMAIL_ADMIN_EMAIL="admin@example.org",
        CRMAIL_ADMIN_PASSWORD="bench-admin-pw-1",
        CRMAIL_WEBHOOKS_ALLOW_PRIVATE="1",
        PYTHONPATH=str(REPO),
    )
    dbname = f"crmail_events_bench_{os.getpid()}"
    if backend == "postgresql":
        _psql(f"DROP DATABASE IF EXISTS {dbname}")
        _psql(f"CREATE DATABASE {dbname}")
        env.update(CRMAIL_DATABASE_URL=f"{PG}/{dbname}", CRMAIL_QUEUE_URL=REDIS)
    try:
        subprocess.run(
            [sys.executable, "-m", "crmail", "init"],
            env=env,
            check=True,
            capture_output=True,
        )
        cmd = [sys.executable, __file__, "--child", kind, "--events", str(args.events)]
        cmd += ["--batch", str(args.batch), "--receiver-port", str(port)]
        if kind == "webhook":
            cmd[cmd.index("--events") + 1] = str(args.webhook_events)
        done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if backend == "postgresql":
            _psql(f"DROP DATABASE IF EXISTS {dbname}")


def _psql(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def throughput(args: argparse.Namespace) -> dict[str, dict[str, list[dict[str, Any]]]]:
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        for backend in args.backends.split(","):
            results[backend] = {"noop": [], "webhook": []}
            for n in range(args.runs):
                for kind in ("noop", "webhook"):
                    got = run_child(kind, backend, args, port)
                    results[backend][kind].append(got)
                    print(f"{backend} {kind} run {n + 1}: {json.dumps(got)}", flush=True)
        import urllib.request

        calls = int(urllib.request.urlopen(f"http://127.0.0.1:{port}/").read())
        expected = args.webhook_events * args.runs * len(results)
        assert calls == expected, (calls, expected)
    finally:
        receiver.terminate()
        receiver.wait()
    return results


# -- the sync's cost -----------------------------------------------------------------------


def sync_cost(args: argparse.Namespace) -> dict[str, list[float]]:
    from bench.corpus import fill, mixed_messages
    from bench.sync_bench import Box, Workdir, crmail_first, crmail_template
    from tests.harness.dovecot import DovecotServer

    work = Workdir()
    template = crmail_template(work)
    compare = Path(args.compare) if args.compare else None
    variants: list[tuple[str, Path, Path, tuple[str, ...]]] = [
        ("events", template, REPO, ()),
        ("no events", template, REPO, ("--no-events",)),
    ]
    if compare is not None:
        variants.append(("compare", crmail_template(work, compare), compare, ()))
    times: dict[str, list[float]] = {label: [] for label, *_ in variants}
    try:
        with DovecotServer(users={}) as server:
            assert server.imap_port is not None
            user, password = server.new_user("mixed")
            messages = mixed_messages(args.sync)
            nbytes = fill(server, user, messages)
            box = Box("mixed", "mixed", user, password, len(messages), nbytes)
            for n in range(args.runs):
                turn = n % len(variants)  # each variant goes first in turn
                for label, data, tree, extra in variants[turn:] + variants[:turn]:
                    run = crmail_first(work, data, server.imap_port, box, *extra, tree=tree)
                    times[label].append(run.seconds)
                    shutil.rmtree(Path(run.detail["data_dir"]).parent)
                    print(f"sync {label} run {n + 1}: {run.seconds:.2f} s", flush=True)
    finally:
        shutil.rmtree(work.root, ignore_errors=True)
    return times


# -- the report ----------------------------------------------------------------------------


def _rate(events: int, seconds: float) -> str:
    return f"{events / seconds:,.0f}/s"


def report(args: argparse.Namespace, results: dict, sync: dict | None, load: list[str]) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    end_load = Path("/proc/loadavg").read_text().split()[:3]
    lines = [
        f"`python bench/events_bench.py --events {args.events} --webhook-events "
        f"{args.webhook_events} --batch {args.batch} --runs {args.runs} --sync {args.sync}"
        f"{' --compare …' if args.compare else ''}`, "
        f"run of {when}.",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average {' '.join(load)} at the start, {' '.join(end_load)} at the end "
        "(other work shared the machine). Medians of the runs.",
        "",
        "| backend | to | events | recording (in batches of "
        f"{args.batch}) | handing over | sending | through the outbox |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = {
        "sqlite": "SQLite (WAL) + huey SQLite queue",
        "postgresql": "PostgreSQL + Redis queue",
    }
    for backend, kinds in results.items():
        for kind, runs in kinds.items():
            n = runs[0]["events"]
            rec = statistics.median(r["record_s"] for r in runs)
            disp = statistics.median(r["dispatch_s"] for r in runs)
            snd = statistics.median(r.get("send_s", 0.0) for r in runs)
            total = statistics.median(
                r["record_s"] + r["dispatch_s"] + r.get("send_s", 0.0) for r in runs
            )
            to = "no-op consumer" if kind == "noop" else "webhook sender → loopback receiver"
            lines.append(
                f"| {names.get(backend, backend)} | {to} | {n:,} | {_rate(n, rec)} | "
                f"{_rate(n, disp)} | {_rate(n, snd) if snd else '—'} | "
                f"**{_rate(n, total)}** |"
            )
    lines += [
        "",
        "Recording: `outbox.record_many` in the writer's transaction, with the commit and the "
        "dispatch jobs each commit queues. Handing over: sequencing and the consumer's "
        "batches (for webhooks: one delivery row per event). Sending: one signed POST per "
        "delivery, one after another, as one `webhooks.send` job does. Through the outbox: "
        "the three together.",
    ]
    if sync:
        on = statistics.median(sync["events"])
        off = statistics.median(sync["no events"])
        lines += [
            "",
            f"| first sync of {args.sync:,} mixed messages (`crmail_run.py`, loopback "
            "Dovecot) | median | runs |",
            "| --- | --- | --- |",
            f"| events recorded | {on:.2f} s | "
            + ", ".join(f"{x:.2f}" for x in sync["events"])
            + " |",
            f"| `outbox.record_many` a no-op (bench only) | {off:.2f} s | "
            + ", ".join(f"{x:.2f}" for x in sync["no events"])
            + " |",
            f"| cost of the events | **{(on - off) / off * 100:+.1f} %** | |",
        ]
        if sync.get("compare"):
            before = statistics.median(sync["compare"])
            rounds = [
                (ours - theirs) / theirs * 100
                for ours, theirs in zip(sync["events"], sync["compare"], strict=True)
            ]
            lines += [
                f"| crmail as in {args.compare_label} (`--compare`) | {before:.2f} s | "
                + ", ".join(f"{x:.2f}" for x in sync["compare"])
                + " |",
                f"| cost of the events and the inbox's upkeep against it | "
                f"**{(on - before) / before * 100:+.1f} %** (target: under 10 %) | |",
                "| the same, round by round (each round runs both under the same load) | "
                + f"**{statistics.median(rounds):+.1f} %** (median) | "
                + ", ".join(f"{x:+.1f} %" for x in rounds)
                + " |",
            ]
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    block = f"{MARK_START}\n{text}\n{MARK_END}"
    old = path.read_text() if path.exists() else ""
    if MARK_START in old and MARK_END in old:
        head, rest = old.split(MARK_START, 1)
        new = head + block + rest.split(MARK_END, 1)[1]
    else:
        new = old.rstrip() + "\n\n## Events and webhooks\n\n" + block + "\n"
    path.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--webhook-events", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sync", type=int, default=4000, help="0: skip the sync's cost")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", default="", help="a tree of an earlier commit (sync cost)")
    parser.add_argument("--compare-label", default="the compared tree")
    parser.add_argument("--out", default="")
    parser.add_argument("--child", choices=("noop", "webhook"), help=argparse.SUPPRESS)
    parser.add_argument("--receiver-port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    load = Path("/proc/loadavg").read_text().split()[:3]
    results = throughput(args)
    sync = sync_cost(args) if args.sync else None
    text = report(args, results, sync, load)
    print(text)
    if args.out:
        write(Path(args.out), text)


if __name__ == "__main__":
    main()
