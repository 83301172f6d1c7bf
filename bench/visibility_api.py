"""Stage 5 of ``visibility_bench.py``: a contact's Emails list through the REST API.

The issue's target is end to end: ``GET /api/v1/contacts/{id}/emails`` under 50 ms at the
95th percentile with 1,000,000 messages, 100,000 contacts and 50 users on SQLite.

- Every user gets an API token (``ApiToken.issue``, what ``crmail token create`` calls).
- ``crmail serve --no-watch`` (waitress, its default 8 request threads) is started on a
  free loopback port against the populated data dir, as a user would run it.
- One client, one keep-alive ``http.client`` connection, one request at a time: the
  wall clock from sending the request to the last byte of the answer (the JSON is parsed
  after the clock stops). Ten untimed requests first (imports, first connections).
- Samples: ``--samples`` random (viewer, contact) pairs for the default view (``all``,
  first page of 50), half of them among the busy contacts; a tenth as many with
  ``?view=user&user=…`` (a random user) and with ``?view=imap``.
- Correctness, after the clock: every answer is 200; a busy contact whose visible mail
  is not empty (``visible_messages(viewer, "contacts", id).count()``) has items; for a
  few samples the answer's ``count`` and first page's ids equal the query's in-process.
- Where the time goes (unless ``--no-split``): the same requests in-process through
  Django's test client, with CPU timers (``time.process_time``) around the steps of the
  endpoint (monkeypatched for the run only) and around every SQL statement
  (``connection.execute_wrapper``). This leaves out waitress and the socket. The server's
  CPU seconds over the timed HTTP run (``/proc/PID/stat``) are reported too: on a shared
  machine they say more than the wall clock.
"""

from __future__ import annotations

import cProfile
import http.client
import io
import json
import os
import pstats
import random
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CRMAIL = str(Path(sys.executable).with_name("crmail"))


@dataclass
class Sample:
    viewer: int
    contact: int
    busy: bool
    query: str = ""  # "" (the default view) or "view=user&user=7", "view=imap"
    seconds: float = 0.0
    status: int = 0
    count: int = -1
    ids: list[int] = field(default_factory=list)

    @property
    def path(self) -> str:
        tail = f"?{self.query}" if self.query else ""
        return f"/api/v1/contacts/{self.contact}/emails{tail}"


def pct(values: list[float], p: float) -> float:
    """The ``p`` quantile (nearest rank) of ``values``, in ms."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def summary(values: list[float]) -> str:
    return (
        f"n {len(values)}: p50 {pct(values, 0.5):.1f} ms, p95 {pct(values, 0.95):.1f} ms, "
        f"max {max(values) * 1000:.1f} ms"
    )


def samples(ids: dict[str, list[int]], n: int, rng: random.Random) -> list[Sample]:
    """``n`` default-view pairs, half busy; ``n // 10`` each of view=user and view=imap."""
    out = []
    for i in range(n):
        busy = bool(i % 2)
        contact = rng.choice(ids["busy"] if busy else ids["contacts"])
        out.append(Sample(rng.choice(ids["users"]), contact, busy))
    for i in range(max(1, n // 10)):
        busy = bool(i % 2)
        contact = rng.choice(ids["busy"] if busy else ids["contacts"])
        out.append(
            Sample(
                rng.choice(ids["users"]),
                contact,
                busy,
                f"view=user&user={rng.choice(ids['users'])}",
            )
        )
        out.append(Sample(rng.choice(ids["users"]), contact, busy, "view=imap"))
    return out


def issue_tokens(user_ids: list[int]) -> dict[int, str]:
    from crmail.people.models import ApiToken, User

    return {u.pk: ApiToken.issue(u, name="bench")[1] for u in User.objects.filter(pk__in=user_ids)}


class Client:
    """GETs over one keep-alive connection; the clock stops at the answer's last byte."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str, token: str) -> tuple[float, int, bytes]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        start = time.perf_counter()
        try:
            self.conn.request("GET", path, headers=headers)
            resp = self.conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # the next request connects again
            raise
        return time.perf_counter() - start, resp.status, body

    def close(self) -> None:
        self.conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def crmail_serve(log: Path) -> Iterator[tuple[int, int]]:
    """``crmail serve`` on a free loopback port (this process's CRMAIL_* environment)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [CRMAIL, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-watch"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"crmail serve did not start; see {log}") from None
                time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def through_http(work: list[Sample], tokens: dict[int, str], log: Path) -> dict[str, Any]:
    """Time every sample through ``crmail serve``; fills in status, count, ids, seconds."""
    with crmail_serve(log) as (port, pid):
        client = Client(port)
        for s in work[:10]:  # untimed: imports, first connections, SQLite's page cache
            client.get(s.path, tokens[s.viewer])
        load_start = os.getloadavg()
        cpu_start = cpu_seconds(pid)
        started = time.perf_counter()
        for s in work:
            s.seconds, s.status, body = client.get(s.path, tokens[s.viewer])
            if s.status == 200:
                page = json.loads(body)
                s.count, s.ids = page["count"], [item["id"] for item in page["items"]]
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_start
        load_end = os.getloadavg()
        client.close()
    return {"load_start": load_start, "load_end": load_end, "elapsed": elapsed, "cpu": cpu}


def check(work: list[Sample], rng: random.Random, n_compared: int = 20) -> list[str]:
    """What is wrong with the answers (empty when nothing is)."""
    from crmail.people.models import User
    from crmail.sharing import emails
    from crmail.sharing.visibility import visible_messages

    problems = [f"{s.path} as user {s.viewer}: HTTP {s.status}" for s in work if s.status != 200]
    users = {u.pk: u for u in User.objects.select_related("role", "profile")}
    for s in work:
        if s.busy and not s.query and s.status == 200:
            expected = visible_messages(users[s.viewer], "contacts", s.contact).count()
            if expected and not s.ids:
                problems.append(f"{s.path} as user {s.viewer}: no items, {expected} visible")
    for s in rng.sample([s for s in work if s.status == 200], min(n_compared, len(work))):
        params = dict(p.split("=") for p in s.query.split("&")) if s.query else {}
        view, user = params.get("view", "all"), params.get("user")
        qs = emails.record_emails(
            users[s.viewer], "contacts", s.contact, view, int(user) if user else None
        )
        count, ids = qs.count(), [m.pk for m in qs[:50]]
        if (s.count, s.ids) != (count, ids):
            problems.append(
                f"{s.path} as user {s.viewer}: API count {s.count}, ids {s.ids[:3]}…; "
                f"in-process count {count}, ids {ids[:3]}…"
            )
        visible = visible_messages(users[s.viewer], "contacts", s.contact)
        if not s.query and count != visible.count():
            problems.append(f"{s.path}: record_emails and visible_messages disagree")
    return problems


# --- where the time goes, in-process ------------------------------------------------------

# (module, attribute, label): the steps of GET /{module}/{id}/emails, timed where they are
# looked up at call time. A step missing after a refactoring is skipped, not an error.
STEPS = [
    ("crmail.people.models", "ApiToken.authenticate", "token check (auth)"),
    ("crmail.api.records", "get_or_404", "record visible? (get_or_404)"),
    ("crmail.sharing.emails", "check_view", "view check"),
    ("crmail.api.messages", "record_emails_page", "the page (record_emails_page: all below)"),
    ("crmail.sharing.emails", "record_emails", "build the query (record_emails)"),
    ("django.db.models.sql.compiler", "SQLCompiler.as_sql", "compile SQL (all statements)"),
    ("django.db.models.query", "QuerySet.count", "count()"),
    ("crmail.api.messages", "counted_page", "page: rows with their count"),
    ("crmail.sharing.emails", "extras", "links, reasons, To (extras)"),
]


class Split:
    """Seconds per step and per SQL statement kind, summed over the requests run."""

    def __init__(self) -> None:
        self.steps: dict[str, list[float]] = defaultdict(list)
        self.sql: dict[str, float] = defaultdict(float)
        self.statements = 0
        self._current: dict[str, float] = defaultdict(float)

    def timed(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        depth = [0]  # a step that calls itself (a subquery's as_sql) is timed once

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            depth[0] += 1
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if not depth[0]:
                    self._current[label] += time.process_time() - start

        return wrapper

    def sql_timer(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.process_time()
        try:
            return execute(sql, params, many, context)
        finally:
            self.sql[_statement_kind(sql)] += time.process_time() - start
            self.statements += 1
            self._current["SQL (all statements)"] += time.process_time() - start

    def end_request(self, wall: float, cpu: float) -> None:
        self._current["whole request, wall clock"] = wall
        self._current["whole request, CPU"] = cpu
        for label, seconds in self._current.items():
            self.steps[label].append(seconds)
        self._current = defaultdict(float)


def _statement_kind(sql: str) -> str:
    head = sql[:400]
    if "people_apitoken" in head:
        return "token"
    if head.startswith("SELECT COUNT(*)"):
        return "count"
    if '"mail_message"."subject"' in head:
        return "page rows"
    if "linking_link" in head and 'FROM "linking_link"' in head[:300]:
        return "links"
    if "mail_participant" in head[:200]:
        return "To addresses"
    return "other"


@contextmanager
def patched(split: Split) -> Iterator[None]:
    import importlib

    undo = []
    for module_name, attr, label in STEPS:
        owner: Any = importlib.import_module(module_name)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        if owner is None or not hasattr(owner, name):
            continue
        original = owner.__dict__[name] if name in vars(owner) else getattr(owner, name)
        fn = original.__func__ if isinstance(original, classmethod) else original
        wrapped = split.timed(label, fn)
        setattr(owner, name, classmethod(wrapped) if isinstance(original, classmethod) else wrapped)
        undo.append((owner, name, original))
    try:
        yield
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


def in_process(work: list[Sample], tokens: dict[int, str], *, profile: int = 0) -> str:
    """The split of the same requests through Django's test client; a report."""
    from django.db import connection
    from django.test import Client as TestClient

    client = TestClient()

    def get(s: Sample) -> None:
        auth = f"Bearer {tokens[s.viewer]}"
        response = client.get(s.path, HTTP_AUTHORIZATION=auth, HTTP_HOST="127.0.0.1")
        assert response.status_code == 200, response.content[:200]

    for s in work[:10]:
        get(s)
    split = Split()
    with patched(split), connection.execute_wrapper(split.sql_timer):
        for s in work:
            start, cpu = time.perf_counter(), time.process_time()
            get(s)
            split.end_request(time.perf_counter() - start, time.process_time() - cpu)
    n = len(work)
    lines = [
        f"In-process (Django test client, the same {n} requests): CPU time of this process "
        "per request and step (`time.process_time`, SQLite runs in-process; less disturbed "
        "by the machine's other work than the wall clock), p50 and p95:",
        "",
        "| step | p50 ms | p95 ms |",
        "| --- | ---: | ---: |",
    ]
    order = ["whole request, wall clock", "whole request, CPU", *(label for *_, label in STEPS)]
    order.append("SQL (all statements)")
    for label in order:
        if label in split.steps:
            values = split.steps[label] + [0.0] * (n - len(split.steps[label]))
            lines.append(f"| {label} | {pct(values, 0.5):.1f} | {pct(values, 0.95):.1f} |")
    kinds = ", ".join(
        f"{kind} {seconds / n * 1000:.1f} ms"
        for kind, seconds in sorted(split.sql.items(), key=lambda kv: -kv[1])
    )
    lines += [
        "",
        f"SQL per request: {split.statements / n:.1f} statements; mean time by kind: {kinds}. "
        "`count()` runs inside `page`; the rest of the request is django-ninja (parameters, "
        "the answer's validation and JSON), the middleware, and building the items.",
    ]
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for s in work[:profile]:
            get(s)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(r"crmail|django/db/models/(query|sql)", 30)
        lines += ["", f"cProfile of {profile} requests, by cumulative time:", "```", out.getvalue()]
        lines.append("```")
    return "\n".join(lines)


def run(
    ids: dict[str, list[int]],
    n: int,
    rng: random.Random,
    data: Path,
    *,
    split: bool = True,
    profile: int = 0,
) -> str:
    """Stage 5; returns the report (also printed as it goes)."""
    work = samples(ids, n, rng)
    tokens = issue_tokens(ids["users"])
    from django.db import connection

    connection.close()  # the server reads the database alone while it is timed
    timing = through_http(work, tokens, data / "serve.log")
    default = [s for s in work if not s.query]
    report = [
        f"Through `crmail serve` (waitress, 8 threads, `--no-watch`), one keep-alive client, "
        f"{len(work)} requests in {timing['elapsed']:.1f} s; load average "
        f"{' '.join(f'{x:.2f}' for x in timing['load_start'])} at the start, "
        f"{' '.join(f'{x:.2f}' for x in timing['load_end'])} at the end. The server used "
        f"{timing['cpu'] / len(work) * 1000:.1f} ms of CPU a request on average (user + "
        "system, /proc), a measure that the machine's other work disturbs less.",
        "",
        "| `GET /api/v1/contacts/{id}/emails` | n | p50 | p95 | max |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    rows = [
        ("default view, first page (target: p95 < 50 ms)", default),
        ("&nbsp;&nbsp;&nbsp;random contacts", [s for s in default if not s.busy]),
        ("&nbsp;&nbsp;&nbsp;busy contacts", [s for s in default if s.busy]),
        ("`?view=user&user=…`", [s for s in work if s.query.startswith("view=user")]),
        ("`?view=imap`", [s for s in work if s.query == "view=imap"]),
    ]
    for label, group in rows:
        secs = [s.seconds for s in group]
        report.append(
            f"| {label} | {len(secs)} | {pct(secs, 0.5):.1f} ms | {pct(secs, 0.95):.1f} ms "
            f"| {max(secs) * 1000:.1f} ms |"
        )
    counts = sorted(s.count for s in default)
    busy_counts = sorted(s.count for s in default if s.busy)
    report += [
        "",
        f"List sizes (`count`) of the default view: median {counts[len(counts) // 2]}, "
        f"busy contacts median {busy_counts[len(busy_counts) // 2]}, max {counts[-1]}; "
        f"answers with no item: {sum(1 for s in default if not s.ids)} of {len(default)}.",
    ]
    print("\n".join(report), flush=True)
    problems = check(work, rng)
    verdict = (
        "Answers checked: all 200; busy contacts with visible mail have items; count and "
        "first-page ids equal the in-process query for 20 samples."
        if not problems
        else "**Wrong answers**: " + "; ".join(problems[:10])
    )
    report += ["", verdict]
    print(verdict, flush=True)
    if split:
        text = in_process(work, tokens, profile=profile)
        print(text, flush=True)
        report += ["", text]
    return "\n".join(report)
