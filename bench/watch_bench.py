"""The IDLE watcher at scale: many Dovecot users watched by `crmail worker` processes.

    python bench/watch_bench.py [--mailboxes 1000] [--deliveries 300] [--rate 2 --rate 10]
                                [--single 20] [--no-failover] [--api 20] [--api-only]
                                [--out docs/benchmarks.md]

Needs root (a throwaway Dovecot from tests/harness with raised process limits) and the
machine's PostgreSQL on 127.0.0.1:5432 (a database of its own, dropped at the end).

1. ``--mailboxes`` Dovecot users, one crmail mailbox each, and one ``crmail worker
   --workers 1`` process. Ready when it holds every watch lease, every Inbox has a
   cursor (the watcher's first syncs) and ``doveadm who`` shows every user connected.
   Its RSS (VmRSS from /proc) is read then and again at the end (VmHWM: the peak).
2. ``--deliveries`` messages to random mailboxes at each ``--rate`` a second (``doveadm save``
   from four threads), each with a unique Message-ID. Latency: from just before
   ``doveadm save`` starts to the moment its Location row is visible to another
   database connection (polled every 10 ms), so ``doveadm`` itself is counted.
3. ``--single`` deliveries to one mailbox, one at a time on an otherwise quiet system.
4. A second worker on the same PostgreSQL: the mailboxes are split, each user has one
   IMAP connection (``doveadm who``); then ``kill -9`` of the first worker, and the time
   until the survivor holds and watches everything (same machine: the dead pid is seen
   at once). Then a worker on "another machine" (its own UTS namespace and host name,
   so its dead pid cannot be seen) is killed too: there the leases must expire first.
5. ``--api`` deliveries through the whole product: the workers are stopped, the other
   mailboxes deactivated, and ``crmail serve`` (web, embedded job worker and IDLE watcher)
   started on a free port with one new mailbox whose owner has an API token. Once it
   holds the mailbox's lease, the Inbox is synced and ``doveadm who`` shows the user,
   one message at a time gets a unique subject and the current Date; latency: from just
   before ``doveadm save`` starts until ``GET /api/v1/mailboxes/{id}/messages?limit=5``
   (newest first; polled every 10 ms over one keep-alive connection) lists it.
   ``--api-only`` runs this phase alone (no other mailboxes) and, with ``--out``, replaces
   only its part of the results.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.harness.dovecot import DovecotServer  # noqa: E402

MARK_START, MARK_END = "<!-- watch-bench:start -->", "<!-- watch-bench:end -->"
API_START, API_END = "<!-- watch-bench:api:start -->", "<!-- watch-bench:api:end -->"
PG = os.environ.get("CRMAIL_BENCH_PG_URL", "postgresql://127.0.0.1:5432")
CRMAIL = str(Path(sys.executable).with_name("crmail"))
INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def wait_for(check: Callable[[], object], what: str, timeout: float) -> float:
    """Seconds until ``check()`` is true (polled every 50 ms); raise after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p95": q[94] if len(ordered) > 1 else ordered[0],
        "max": ordered[-1],
    }


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.n = 0 if args.api_only else args.mailboxes
        self.tmp = Path(tempfile.mkdtemp(prefix="crmail-watch-bench-"))
        self.db = f"crmail_watchbench_{os.getpid()}_{secrets.token_hex(3)}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CRMAIL_", "DJANGO_"))},
            "CRMAIL_DATA_DIR": str(self.tmp / "data"),
            "CRMAIL_DATABASE_URL": f"{PG}/{self.db}",
            "CRMAIL_LOG_LEVEL": "WARNING",
            "CRMAIL_ADMIN_EMAIL": "admin@bench.test",
            "CRMAIL_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        }
        self.server = DovecotServer(max_connections=2 * self.n + 200)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.users: list[str] = []
        self.boxes: dict[str, int] = {}  # dovecot user -> mailbox id
        self.results: dict[str, object] = {}
        self.save_seconds: list[float] = []

    # -- set-up ------------------------------------------------------------------------------

    def setup(self) -> None:
        import psycopg

        # Each Dovecot imap process watches its Maildir with an inotify instance of its
        # own; past the limit (128 by default, per uid: all users are vmail) Dovecot falls
        # back to looking every 30 s. Raised for the run, put back afterwards.
        self.inotify_before = int(INOTIFY.read_text())
        self.inotify = max(self.inotify_before, 4 * self.n + 256)
        INOTIFY.write_text(str(self.inotify))
        self.load = os.getloadavg()

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db}"')
        os.environ.update(self.env)
        subprocess.run([CRMAIL, "init"], env=self.env, check=True, capture_output=True)
        import django

        os.environ["DJANGO_SETTINGS_MODULE"] = "crmail.config.settings"
        django.setup()
        self.server.start()
        log(f"Dovecot on port {self.server.imap_port}; creating {self.n} users and mailboxes")
        for _ in range(self.n):
            self.users.append(self.server.new_user("w")[0])
        self.boxes = self._create_mailboxes(self.users)

    def _create_mailboxes(self, users: list[str]) -> dict[str, int]:
        """One crmail user and mailbox per Dovecot user; their mailbox ids by login."""
        from crmail.mailboxes.models import Mailbox
        from crmail.people.models import Profile, Role, User

        role, profile = (
            Role.objects.get(name="Sales Representative"),
            Profile.objects.get(name="Standard"),
        )
        owners = []
        for user in users:
            owner = User(email=f"{user}@bench.test", name=user, role=role, profile=profile)
            owner.set_unusable_password()
            owners.append(owner)
        User.objects.bulk_create(owners, batch_size=500)
        by_email = dict(User.objects.values_list("email", "pk"))
        Mailbox.objects.bulk_create(
            [
                Mailbox(
                    owner_id=by_email[f"{user}@bench.test"],
                    email=f"{user}@bench.test",
                    host="127.0.0.1",
                    port=self.server.imap_port,
                    security="none",
                    login=user,
                    secret=self.server.users[user],
                )
                for user in users
            ],
            batch_size=500,
        )
        return dict(Mailbox.objects.filter(login__in=users).values_list("login", "pk"))

    def start_worker(self, *, other_host: str | None = None) -> subprocess.Popen[bytes]:
        cmd = [CRMAIL, "worker", "--workers", "1"]
        if other_host:  # a UTS namespace of its own: another machine's host name
            cmd = ["unshare", "--uts", "sh", "-c", f'hostname {other_host} && exec "$@"', "-"]
            cmd += [CRMAIL, "worker", "--workers", "1"]
        out = open(self.tmp / f"worker{len(self.workers)}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.workers.append(proc)
        return proc

    # -- observations --------------------------------------------------------------------------

    def holders(self) -> dict[str, int]:
        from django.db.models import Count

        from crmail.jobs.models import Lease

        rows = (
            Lease.objects.filter(name__startswith="mailbox-watch:")
            .values("holder")
            .annotate(n=Count("pk"))
        )
        return {r["holder"]: r["n"] for r in rows}

    def connections(self) -> dict[str, int]:
        """IMAP connections per user, from ``doveadm who -1``."""
        counts: dict[str, int] = {}
        out = self.server.doveadm("who", "-1")
        for line in out.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[1] == "imap":
                counts[parts[0]] = counts.get(parts[0], 0) + 1
        return counts

    def all_watched(self) -> bool:
        conns = self.connections()
        return sum(1 for u in self.users if conns.get(u)) == self.n

    def synced_inboxes(self) -> int:
        from crmail.mailboxes.models import Folder

        return Folder.objects.filter(remote_id="INBOX").exclude(cursor={}).count()

    # -- deliveries --------------------------------------------------------------------------

    def deliver_and_time(self, targets: list[str], rate: float | None) -> list[float]:
        """Deliver one message to each user in ``targets``; seconds until each is stored.

        Counted from the start of ``doveadm save``; ``self.save_seconds`` collects how
        long each save took (the message is on the server at the earliest then).
        """
        from django.db import connection

        from crmail.mailboxes.models import Location

        sent: dict[str, float] = {}
        done: dict[str, float] = {}
        lock = threading.Lock()
        finished = threading.Event()

        def deliver(user: str) -> None:
            mid = f"bench-{uuid.uuid4().hex}@bench.test"
            raw = (
                f"From: Someone <someone@example.com>\r\nTo: {user}@bench.test\r\n"
                f"Subject: watch bench\r\nMessage-ID: <{mid}>\r\n"
                f"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\nHello.\r\n"
            ).encode()
            with lock:
                sent[mid] = time.monotonic()
            self.server.doveadm("save", "-u", user, "-m", "INBOX", input=raw)
            self.save_seconds.append(time.monotonic() - sent[mid])

        def poll() -> None:
            try:
                while not finished.is_set() or len(done) < len(sent):
                    with lock:
                        pending = [m for m in sent if m not in done]
                    if pending:
                        found = Location.objects.filter(
                            message__message_id__in=pending
                        ).values_list("message__message_id", flat=True)
                        now = time.monotonic()
                        for mid in found:
                            done.setdefault(mid, now)
                    time.sleep(0.01)
            finally:
                connection.close()

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        with ThreadPoolExecutor(4) as pool:
            start = time.monotonic()
            for i, user in enumerate(targets):
                if rate:
                    time.sleep(max(0.0, start + i / rate - time.monotonic()))
                pool.submit(deliver, user)
        finished.set()
        poller.join(120)
        missing = len(sent) - len(done)
        if missing:
            raise RuntimeError(f"{missing} deliveries were not stored within 120 s")
        return [done[m] - sent[m] for m in sent]

    # -- phases --------------------------------------------------------------------------------

    def phase_one_worker(self) -> None:
        first = self.start_worker()
        t = time.monotonic()
        wait_for(lambda: sum(self.holders().values()) == self.n, "every lease taken", 300)
        leased = time.monotonic() - t
        wait_for(lambda: self.synced_inboxes() == self.n, "first syncs", 600)
        synced = time.monotonic() - t
        wait_for(self.all_watched, "every user connected", 300)
        ready = time.monotonic() - t
        time.sleep(3)
        rss, _ = rss_mb(first.pid)
        log(f"one worker: leases {leased:.1f} s, synced {synced:.1f} s, watched {ready:.1f} s")
        log(f"worker RSS with {self.n} watched mailboxes: {rss:.0f} MB")
        self.results["startup"] = {"leases": leased, "synced": synced, "watched": ready}
        self.results["rss_ready"] = rss

        for rate in self.args.rate:
            targets = [random.choice(self.users) for _ in range(self.args.deliveries)]
            latencies = self.deliver_and_time(targets, rate)
            self.results[f"random {rate:g}"] = percentiles(latencies)
            log(f"random deliveries at {rate:g}/s: {self.results[f'random {rate:g}']}")
            time.sleep(5)

        burst = random.sample(self.users, min(100, self.n))
        self.results["burst"] = percentiles(self.deliver_and_time(burst, None))
        log(f"burst of {len(burst)} deliveries at once: {self.results['burst']}")

        one = random.choice(self.users)
        singles = []
        for _ in range(self.args.single):
            singles += self.deliver_and_time([one], None)
            time.sleep(0.3)
        self.results["single"] = percentiles(singles)
        log(f"one mailbox, one at a time: {self.results['single']}")
        self.results["save"] = percentiles(self.save_seconds)
        rss, hwm = rss_mb(first.pid)
        self.results["rss_end"], self.results["rss_peak"] = rss, hwm
        log(f"worker RSS after deliveries {rss:.0f} MB, peak {hwm:.0f} MB")

    def phase_failover(self) -> None:
        first, second = self.workers[0], self.start_worker()

        def split() -> bool:
            h = self.holders()
            return len(h) == 2 and sum(h.values()) == self.n and min(h.values()) > 0

        balance = wait_for(split, "the mailboxes split between two workers", 300)
        wait_for(self.all_watched, "every user connected", 300)
        time.sleep(5)
        shares = sorted(self.holders().values())
        samples = [self.connections() for _ in range(5) if not time.sleep(1)]
        doubles = max(sum(1 for c in s.values() if c > 1) for s in samples)
        unwatched = max(self.n - sum(1 for u in self.users if s.get(u)) for s in samples)
        log(f"two workers: split {shares} after {balance:.1f} s; doubles {doubles}")
        self.results["two"] = {
            "shares": shares,
            "balance": balance,
            "doubles": doubles,
            "unwatched": unwatched,
        }
        self.results["rss_two"] = [rss_mb(p.pid)[0] for p in (first, second)]

        self.results["local_failover"] = self._kill_and_time(first, second)
        log(f"kill -9, same machine: {self.results['local_failover']}")

        remote = self.start_worker(other_host=f"bench-other-{secrets.token_hex(2)}")
        wait_for(lambda: len(self.holders()) == 2 and split(), "the other machine's share", 300)
        wait_for(self.all_watched, "every user connected", 300)
        time.sleep(3)
        self.results["remote_failover"] = self._kill_and_time(remote, second)
        log(f"kill -9, another machine: {self.results['remote_failover']}")

    def _kill_and_time(
        self, victim: subprocess.Popen[bytes], survivor: subprocess.Popen[bytes]
    ) -> dict[str, float]:
        from crmail.jobs.models import Lease

        orphans = [
            int(n.rpartition(":")[2])
            for n in Lease.objects.filter(name__startswith="mailbox-watch:")
            .exclude(holder__endswith=f":{survivor.pid}")
            .values_list("name", flat=True)
        ]
        orphan_user = next(u for u, pk in self.boxes.items() if pk == orphans[0])
        t = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        # One message for a mailbox of the dead worker, right away.
        late: list[float] = []
        thread = threading.Thread(
            target=lambda: late.extend(self.deliver_and_time([orphan_user], None))
        )
        thread.start()
        wait_for(
            lambda: (h := self.holders()) and len(h) == 1 and sum(h.values()) == self.n,
            "the survivor holding every lease",
            300,
        )
        leases = time.monotonic() - t
        wait_for(self.all_watched, "every user connected again", 300)
        watched = time.monotonic() - t
        thread.join(300)
        return {
            "moved": len(orphans),
            "leases": leases,
            "watched": watched,
            "orphan_delivery": late[0] if late else float("nan"),
        }

    # -- through the API ---------------------------------------------------------------------

    def phase_api(self) -> None:
        """``crmail serve`` watching one mailbox: delivery → listed by the API (see 5.)."""
        from crmail.mailboxes.models import Folder, Mailbox

        self.stop_workers()
        Mailbox.objects.update(is_active=False)  # the serve process watches only the new one
        user = self.server.new_user("api")[0]
        box = self._create_mailboxes([user])[user]
        token = subprocess.run(
            [CRMAIL, "token", "create", f"{user}@bench.test"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        out = open(self.tmp / "serve.log", "ab")  # noqa: SIM115
        serve = subprocess.Popen(
            [CRMAIL, "serve", "--port", str(port)],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        self.workers.append(serve)
        api = ApiClient(port, token)
        path = f"/api/v1/mailboxes/{box}/messages?limit=5"
        t = time.monotonic()
        wait_for(lambda: api.ready(path), "crmail serve answering", 120)
        wait_for(
            lambda: sum(n for h, n in self.holders().items() if h.endswith(f":{serve.pid}")),
            "crmail serve holding the mailbox's lease",
            120,
        )
        inbox = Folder.objects.filter(mailbox_id=box, remote_id="INBOX").exclude(cursor={})
        wait_for(inbox.exists, "the Inbox's first sync", 120)
        wait_for(lambda: self.connections().get(user), "the user connected", 120)
        self.results["api_watched"] = time.monotonic() - t
        log(f"crmail serve on port {port} watches mailbox {box} after {time.monotonic() - t:.1f} s")
        time.sleep(2)

        self.results["api_load_start"] = os.getloadavg()
        latencies, gets, saves = [], [], []
        for _ in range(self.args.api):
            latency, save, times = self._api_delivery(user, api, path)
            latencies.append(latency)
            saves.append(save)
            gets += times
            time.sleep(0.3)
        api.close()
        self.results["api_load_end"] = os.getloadavg()
        self.results["api"] = percentiles(latencies)
        self.results["api_save"] = percentiles(saves)
        self.results["api_get"] = percentiles(gets)
        log(f"delivery → listed by the API: {self.results['api']}")
        log(f"of which doveadm save {self.results['api_save']}; GET {self.results['api_get']}")

    def _api_delivery(
        self, user: str, api: ApiClient, path: str
    ) -> tuple[float, float, list[float]]:
        """(seconds until the API lists the message, of which ``doveadm save``, GET times)."""
        subject = f"api bench {uuid.uuid4().hex}"
        raw = (
            f"From: Someone <someone@example.com>\r\nTo: {user}@bench.test\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{uuid.uuid4().hex}@bench.test>\r\n"
            f"Date: {formatdate(usegmt=True)}\r\n\r\nHello.\r\n"
        ).encode()
        saved: list[float] = []

        def save() -> None:
            self.server.doveadm("save", "-u", user, "-m", "INBOX", input=raw)
            saved.append(time.monotonic() - start)

        start = time.monotonic()
        saver = threading.Thread(target=save)
        saver.start()
        times = []
        while True:
            t = time.monotonic()
            page = api.get(path)
            now = time.monotonic()
            times.append(now - t)
            if any(item["subject"] == subject for item in page["items"]):
                break
            if now - start > 30:
                raise TimeoutError("a delivery was not listed by the API within 30 s")
            time.sleep(0.01)
        saver.join()
        return now - start, saved[0], times

    def stop_workers(self) -> None:
        """SIGTERM to every worker still running (they give their leases up)."""
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    # -- teardown and report -----------------------------------------------------------------

    def teardown(self) -> None:
        self.stop_workers()
        from django.db import connections

        connections.close_all()
        if self.server.dir is not None:
            log_text = self.server.log_path.read_text(errors="replace")
            self.results["inotify_warnings"] = log_text.count("Inotify instance limit")
        self.server.stop()
        if getattr(self, "inotify_before", None):
            INOTIFY.write_text(str(self.inotify_before))
        import psycopg

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')

    def report(self) -> str:
        r = self.results
        a = self.args
        if a.api_only:
            return self.api_report()
        cpu = _cpu_model()
        lines = [
            f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `python bench/watch_bench.py "
            f"--mailboxes {a.mailboxes} --deliveries {a.deliveries} "
            f"{' '.join(f'--rate {x:g}' for x in a.rate)} "
            f"--single {a.single} --api {a.api}`.",
            "",
            f"Machine: {cpu}, {os.cpu_count()} cores, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.1f} GiB; "
            f"{platform.platform()}; Python {platform.python_version()}; Dovecot "
            f"{_version(['dovecot', '--version'])}; PostgreSQL "
            f"{_version(['psql', '--version']).split()[-1]}; plain IMAP on loopback; "
            f"fs.inotify.max_user_instances {self.inotify} for the run (Dovecot's inotify "
            f"warnings: {r.get('inotify_warnings', '?')}); load average at the start "
            f"{' '.join(f'{x:.2f}' for x in self.load)}. The worker is `crmail worker "
            "--workers 1` (one job thread, the watcher with its sync threads); Dovecot, "
            "PostgreSQL, the bench and whatever else runs share the same 2 cores.",
            "",
            f"One worker, {a.mailboxes} mailboxes: every lease taken after "
            f"{r['startup']['leases']:.1f} s, every Inbox synced once after "  # type: ignore[index]
            f"{r['startup']['synced']:.1f} s, every user connected (`doveadm who`) after "  # type: ignore[index]
            f"{r['startup']['watched']:.1f} s. Worker RSS: **{r['rss_ready']:.0f} MB** "  # type: ignore[index]
            f"watching, {r['rss_end']:.0f} MB after the deliveries, peak (VmHWM) "
            f"{r['rss_peak']:.0f} MB.",
            "",
            "| delivery → stored (doveadm save started → Location row visible) | n | p50 "
            "| p95 | max |",
            "| --- | --- | --- | --- | --- |",
            *(
                _row(f"random mailboxes, {x:g} a second", r[f"random {x:g}"])  # type: ignore[arg-type]
                for x in a.rate
            ),
            _row("100 mailboxes at once (burst)", r["burst"]),  # type: ignore[arg-type]
            _row("one mailbox, one message at a time", r["single"]),  # type: ignore[arg-type]
            _row("of which `doveadm save` itself (all of the above)", r["save"]),  # type: ignore[arg-type]
        ]
        if "two" in r:
            two, lf, rf = r["two"], r["local_failover"], r["remote_failover"]
            lines += [
                "",
                f"Two workers on PostgreSQL: split {two['shares']} after "  # type: ignore[index]
                f"{two['balance']:.1f} s; over 5 samples of `doveadm who`, users with more "  # type: ignore[index]
                f"than one IMAP connection: at most {two['doubles']}, users with none: at "  # type: ignore[index]
                f"most {two['unwatched']}. RSS "  # type: ignore[index]
                f"{' and '.join(f'{x:.0f}' for x in r['rss_two'])} MB.",  # type: ignore[attr-defined]
                "",
                "| kill -9 of one worker | mailboxes moved | all leases held by the survivor "
                "| all watched again | a message delivered to a moved mailbox at the kill, "
                "stored after |",
                "| --- | --- | --- | --- | --- |",
            ]
            for name, f in (("same machine", lf), ("other machine (UTS namespace)", rf)):
                lines.append(
                    f"| {name} | {f['moved']} | {f['leases']:.1f} s | {f['watched']:.1f} s "  # type: ignore[index]
                    f"| {f['orphan_delivery']:.1f} s |"  # type: ignore[index]
                )
        if a.api:
            lines += ["", self.api_report().rstrip("\n")]
        return "\n".join(lines) + "\n"

    def api_report(self) -> str:
        """The API phase's part of the results, between markers of its own (see write_report)."""
        r = self.results
        api, save, get = r["api"], r["api_save"], r["api_get"]
        # Medians; the 500 ms is Dovecot's NOTIFY_DELAY_MSECS, the 50 ms watcher.DEBOUNCE.
        rest = api["p50"] - save["p50"] - 0.5 - 0.05 - get["p50"] - 0.005  # type: ignore[index]
        loads = [" ".join(f"{x:.2f}" for x in r[k]) for k in ("api_load_start", "api_load_end")]  # type: ignore[attr-defined]
        run = (
            f"run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `python bench/watch_bench.py "
            f"--api-only --api {self.args.api}`"
            if self.args.api_only
            else "same run"
        )
        lines = [
            API_START,
            f"Through the API ({run}): `crmail serve` (waitress, embedded job worker, IDLE "
            f"watcher) with one watched mailbox, ready after {r['api_watched']:.1f} s; load "
            f"average {loads[0]} at the start of the deliveries, {loads[1]} at the end. "
            f"A poll (`GET /api/v1/mailboxes/{{id}}/messages?limit=5`) took p50 "
            f"{get['p50'] * 1000:.0f} ms, p95 {get['p95'] * 1000:.0f} ms.",  # type: ignore[index]
            "",
            "| delivery → listed by the API (doveadm save started → in `GET /api/v1/mailboxes"
            "/{id}/messages`, polled every 10 ms) | n | p50 | p95 | max |",
            "| --- | --- | --- | --- | --- |",
            _row("one mailbox, one message at a time (target: 1 s)", api),  # type: ignore[arg-type]
            _row("of which `doveadm save` itself", save),  # type: ignore[arg-type]
            "",
            f"Made of (medians): `doveadm save` {save['p50'] * 1000:.0f} ms, Dovecot's 500 ms "  # type: ignore[index]
            "before it tells an idling client, the watcher's 50 ms debounce, then about "
            f"{rest * 1000:.0f} ms of crmail's sync (login, fetch, store, parse, commit), and "
            f"half a 10 ms poll interval plus a {get['p50'] * 1000:.0f} ms GET.",  # type: ignore[index]
            API_END,
        ]
        return "\n".join(lines) + "\n"


def _row(name: str, p: dict[str, float]) -> str:
    return (
        f"| {name} | {p['n']} | {p['p50'] * 1000:.0f} ms | {p['p95'] * 1000:.0f} ms "
        f"| {p['max'] * 1000:.0f} ms |"
    )


class ApiClient:
    """GETs on crmail's API with a token, over one keep-alive connection."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def get(self, path: str) -> Any:
        try:
            self.conn.request("GET", path, headers=self.headers)
            resp = self.conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # the next request connects again
            raise
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {resp.status} {body[:200]!r}")
        return json.loads(body)

    def ready(self, path: str) -> bool:
        try:
            self.get(path)
        except (OSError, http.client.HTTPException):
            return False
        return True

    def close(self) -> None:
        self.conn.close()


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "?"


def write_report(path: Path, text: str, *, api_only: bool = False) -> None:
    """Replace the section between the markers (or add it at the end of ``path``).

    An ``--api-only`` run replaces only the API part inside the section (or adds it at
    the section's end), so the results of the last full run stay.
    """
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if api_only and MARK_START in old and MARK_END in old:
        head, _, rest = old.partition(MARK_START)
        section, _, tail = rest.partition(MARK_END)
        if API_START in section and API_END in section:
            before, _, after = section.partition(API_START)
            after = after.partition(API_END)[2]
            section = f"{before}{text.rstrip(chr(10))}{after}"
        else:
            section = f"{section.rstrip(chr(10))}\n\n{text}"
        path.write_text(f"{head}{MARK_START}{section}{MARK_END}{tail}", encoding="utf-8")
    elif MARK_START in old and MARK_END in old:
        head, _, rest = old.partition(MARK_START)
        _, _, tail = rest.partition(MARK_END)
        path.write_text(f"{head}{MARK_START}\n{text}{MARK_END}{tail}", encoding="utf-8")
    else:
        path.write_text(f"{old.rstrip()}\n\n{MARK_START}\n{text}{MARK_END}\n", encoding="utf-8")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--deliveries", type=int, default=300)
    parser.add_argument(
        "--rate", type=float, action="append", help="deliveries a second (repeat: several runs)"
    )
    parser.add_argument("--single", type=int, default=20)
    parser.add_argument("--no-failover", action="store_true")
    parser.add_argument(
        "--api",
        type=int,
        default=20,
        metavar="N",
        help="N deliveries timed through `crmail serve` and the API (0: skip)",
    )
    parser.add_argument(
        "--api-only", action="store_true", help="run only the API phase (no other mailboxes)"
    )
    parser.add_argument("--out", type=Path, help="put the results in this Markdown file")
    args = parser.parse_args()
    if args.api_only and args.api < 1:
        parser.error("--api-only needs --api N with N at least 1")
    args.rate = args.rate or [2.0, 10.0]
    signal.signal(signal.SIGTERM, _interrupt)
    bench = Bench(args)
    try:
        bench.setup()
        if not args.api_only:
            bench.phase_one_worker()
            if not args.no_failover:
                bench.phase_failover()
        if args.api or args.api_only:
            bench.phase_api()
    finally:
        bench.teardown()
    text = bench.report()
    print(text)
    if args.out:
        write_report(args.out, text, api_only=args.api_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
