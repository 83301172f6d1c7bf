"""crmail's first IMAP sync against mbsync and offlineimap, side by side, one Dovecot.

    python bench/sync_bench.py [--mixed 4000] [--real auto|PATH|none] [--rtt-ms 20]
                               [--runs 3] [--out docs/benchmarks.md] [--no-profile]
                               [--no-offlineimap] [--compare TREE --compare-label TEXT]
                               [--search-index-compare] [--floor] [--worker-beside]
                               [--command] [--sync-only]

Needs root (a throwaway Dovecot from tests/harness), Debian's isync (``apt-get install -y
isync``: mbsync) and offlineimap, and npm for the real-world corpus (see bench/corpus.py);
``--no-offlineimap`` and ``--real none`` do without the last two. For each mailbox and each run, in
turn: mbsync (PipelineDepth 50) into a fresh Maildir, offlineimap into a fresh Maildir,
crmail's first sync (``open_driver`` + ``sync_mailbox``) into a fresh SQLite data dir, the
same through a proxy adding ``--rtt-ms`` of round-trip time, then a resync with nothing
changed through the proxy. Every client runs in a child process; wall time is measured
around it, and peak RSS is the child's ``ru_maxrss`` from ``wait4``. With ``--compare``,
the crmail of another tree (a copy of an earlier commit, with its own migrated data dir)
runs its first syncs in the same rounds, so a change is measured under the same load.
With ``--search-index-compare``, each round also runs crmail's first sync with the search
index switched off in the child (``crmail_run.py --search-index off``), and the report
sets the two side by side with the time the queued index jobs took (run by the child after
the measured sync, as a job worker would). With ``--floor``, each round also runs
``floor_sync.py`` after mbsync: a plain Python first sync, the floor under crmail's on
the machine, and ``floor_sync.py --process``, the floor of everything processed (bodies
parsed whole and their words indexed by a second process). With ``--worker-beside``,
each round also runs crmail's first sync with ``crmail worker`` started beside it on the
same data dir, as an installation runs (email intelligence off), and measures until
everything the sync stored is processed, and the CPU seconds every process of the machine
spent meanwhile (the database's and Dovecot's too; for mbsync, its whole run): spread over
the cores, the least time that work could take on the machine. ``--command`` also times
``crmail mailbox sync`` itself in each round, as a user runs it (the mailbox added first,
untimed), beside the benchmark's own process. ``--sync-only`` runs crmail's
first syncs alone (and ``--compare``'s, the two taking turns going first), with no other
client, no RTT round and no queued jobs: a quick side-by-side measurement of a change.
``BENCH_SKIP_JOBS=1`` in the environment leaves the queued jobs unrun in any mode (the
process column then holds start-up and sync alone); ``BENCH_SKIP_JOBS=intelligence.analyse``
leaves only the jobs it names unrun (job names, comma-separated).
Afterwards one run per mailbox with phase timers and one under cProfile show where crmail's
time goes.

With ``--out``, the tables replace what lies between ``<!-- bench:start -->`` and
``<!-- bench:end -->`` in that file (or make the file when it has no such markers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.benchenv import machine_busy  # noqa: E402
from bench.corpus import fill, mixed_messages, real_messages  # noqa: E402
from crmail.mailboxes.drivers.tests.bench_imap import delay_proxy  # noqa: E402
from tests.harness.dovecot import DovecotServer  # noqa: E402

ENTRY = REPO / "bench" / "crmail_run.py"
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"
PASSWORD_VAR = "CRMAIL_BENCH_IMAP_PASSWORD"
_IN = "&nbsp;&nbsp;&nbsp;"
NESTED: dict[str, tuple[str, ...]] = {
    "fetch (all)": ("IMAP fetch", "header sections"),
    "store batch (all)": (
        "header fields",
        "pack write",
        "waiting for the pack",
        "INSERT Message",
        "INSERT Blob",
        "INSERT Location",
        "INSERT Participant",
        "events recorded",
        "conversations refresh",
        "copies of sent mail",
        "COMMIT",
        "consumers after the commit",
    ),
}
TOP_PHASES = (
    "fetch (all)",
    "waiting for header fields",
    "store batch (all)",
    "parsing (all)",
    "parse_pending",
)
_IN2 = _IN * 2
PHASES: list[tuple[str, str]] = [
    ("total", "`sync_mailbox`, total"),
    ("fetch (all)", "fetching batches (`_prepared`)"),
    ("IMAP fetch", f"{_IN}IMAP fetch (socket reads, response parsing)"),
    ("header sections", f"{_IN}header sections handed to the parsing worker"),
    ("fetch (all) other", f"{_IN}waiting for the preparing thread (SHA-256, zstd)"),
    ("waiting for header fields", "waiting for the parsing worker's header fields"),
    ("store batch (all)", "storing each batch, one transaction (`_store_batch`)"),
    ("header fields", f"{_IN}header fields and threads for the INSERT (`HeadersFirst`)"),
    ("threads", f"{_IN2}threads (`_assign_threads`)"),
    ("pack write", f"{_IN}the pack laid out and handed to its thread (blob store)"),
    ("waiting for the pack", f"{_IN}waiting for the pack's fsync before the commit"),
    (
        "INSERT Message",
        f"{_IN}INSERT Message rows with their header fields (many rows a statement)",
    ),
    ("INSERT Blob", f"{_IN}INSERT the pack's index rows (many rows a statement)"),
    ("INSERT Location", f"{_IN}INSERT Location rows with thread and date (many rows a statement)"),
    ("INSERT Participant", f"{_IN}INSERT Participant rows (many rows a statement)"),
    ("events recorded", f"{_IN}events recorded (message.received, message.parsed)"),
    ("conversations refresh", f"{_IN}conversations computed"),
    ("copies of sent mail", f"{_IN}copies of sent mail marked"),
    ("COMMIT", f"{_IN}COMMIT"),
    (
        "consumers after the commit",
        f"{_IN}after the commit, in this process: the events sequenced, linking (`_nudge`)",
    ),
    ("store batch (all) other", f"{_IN}other (known hashes, quota and storage)"),
    ("parsing (all)", "parsing after the store (`ParsePipeline`: small syncs, fallback)"),
    ("parse_pending", "`parse_pending` (messages left pending by earlier runs)"),
    ("rest", "rest (folder list, SELECT, progress, cursors)"),
    ("sha256 (thread)", "beside it, in the preparing thread: SHA-256"),
    ("zstd compress (thread)", "beside it, in the preparing thread: zstd compress (`pack`)"),
    ("pack write (thread)", "beside it, in the pack thread: the pack built, written, fsynced"),
]


@dataclass
class Run:
    seconds: float
    maxrss_kb: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Box:
    key: str
    label: str
    user: str
    password: str
    count: int
    nbytes: int
    results: dict[str, list[Run]] = field(default_factory=lambda: defaultdict(list))
    phases: dict[str, float] = field(default_factory=dict)
    profile: list[str] = field(default_factory=list)


# -- child processes ---------------------------------------------------------------------


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in KiB, stdout) of ``cmd``.

    The child runs under ``/usr/bin/time -f %M``: a peak RSS read from this process's own
    ``wait4`` would include this (large) process, since Linux keeps the high-water mark
    of the address space a child had before ``execve``.

    The disk is flushed first (``os.sync``): what earlier runs wrote or deleted (hundreds
    of MB a round) would otherwise be written back during this one, and a client that
    fsyncs each message (mbsync) would pay for the others' writes.
    """
    os.sync()
    with (
        tempfile.NamedTemporaryFile() as rss_file,
        tempfile.TemporaryFile() as out_file,
        tempfile.TemporaryFile() as err_file,
    ):
        timed = ["/usr/bin/time", "-q", "-f", "%M", "-o", rss_file.name, *cmd]
        start = time.perf_counter()
        proc = subprocess.run(timed, stdout=out_file, stderr=err_file, env=env, cwd=REPO)
        seconds = time.perf_counter() - start
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
        rss_text = Path(rss_file.name).read_text().strip()
    if proc.returncode != 0:
        raise RuntimeError(
            f"{Path(cmd[0]).name} exited {proc.returncode}: "
            f"{err.decode(errors='replace')[-2000:]}{out.decode(errors='replace')[-500:]}"
        )
    return seconds, int(rss_text.splitlines()[-1]), out.decode(errors="replace")


class Workdir:
    """Fresh directories for each client run, all under one temp dir on the same disk.

    Nothing in it is deleted before the benchmark ends. On the machines measured, ext4
    passes over every inode freed in the last minute (five while its inode table block
    is not written back) when it looks for a free one (``recently_deleted``, called from
    ``find_inode_bit``), reading each. A Maildir of thousands of files deleted between
    runs made the next client that creates thousands of files (mbsync, one a message)
    spend seconds of kernel time in that search: 60 % of mbsync's time in a ``perf``
    profile, 4.0-5.6 s instead of 1.7-2.0 s for the mixed mailbox. The runs need a few
    GB of disk until the end; leave a few minutes after deleting many files (an earlier
    benchmark's) before starting one."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="crmail-bench-"))
        self.n = 0

    def fresh(self, name: str) -> Path:
        self.n += 1
        path = self.root / f"{name}-{self.n}"
        path.mkdir()
        return path


def mbsync(work: Workdir, port: int, box: Box) -> Run:
    base = work.fresh("mbsync")
    (base / "mail").mkdir()
    rc = base / "mbsyncrc"
    rc.write_text(
        f"IMAPAccount bench\nHost 127.0.0.1\nPort {port}\nUser {box.user}\n"
        f"Pass {box.password}\nSSLType None\nAuthMechs LOGIN\nPipelineDepth 50\n\n"
        "IMAPStore remote\nAccount bench\n\n"
        f"MaildirStore local\nPath {base}/mail/\nInbox {base}/mail/INBOX\n\n"
        "Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\n"
        f"Sync Pull\nSyncState {base}/state/\n"
    )
    (base / "state").mkdir()
    busy = machine_busy()
    seconds, rss, _ = run_measured(["mbsync", "-q", "-c", str(rc), "bench"])
    busy = machine_busy() - busy
    got = _count_maildir(base / "mail" / "INBOX")
    # The CPU seconds of every process of the machine meanwhile (Dovecot's too).
    return Run(seconds, rss, {"messages": got, "busy_s": busy})


def floor_sync(work: Workdir, port: int, box: Box, *extra: str) -> Run:
    """``floor_sync.py``: a plain Python first sync, the floor under crmail's (``--floor``);
    with ``--process``, everything processed too (bodies and words, a second process)."""
    base = work.fresh("floor")
    env = {**os.environ, PASSWORD_VAR: box.password, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "bench" / "floor_sync.py"), "--port", str(port)]
    cmd += ["--login", box.user, "--password-env", PASSWORD_VAR, "--dir", str(base / "data")]
    cmd += extra
    seconds, rss, out = run_measured(cmd, env=env)
    return Run(seconds, rss, json.loads(out.strip().splitlines()[-1]))


def offlineimap(work: Workdir, port: int, box: Box) -> Run:
    base = work.fresh("offlineimap")
    (base / "mail").mkdir()
    rc = base / "offlineimaprc"
    rc.write_text(
        f"[general]\naccounts = bench\nmetadata = {base}/meta\n\n"
        "[Account bench]\nlocalrepository = local\nremoterepository = remote\n\n"
        f"[Repository local]\ntype = Maildir\nlocalfolders = {base}/mail\n\n"
        f"[Repository remote]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {port}\n"
        f"remoteuser = {box.user}\nremotepass = {box.password}\nssl = no\nstarttls = no\n"
        "folderfilter = lambda name: name == 'INBOX'\n"
    )
    seconds, rss, _ = run_measured(["offlineimap", "-c", str(rc), "-o", "-u", "quiet"])
    got = _count_maildir(base / "mail" / "INBOX")
    return Run(seconds, rss, {"messages": got})


def _count_maildir(path: Path) -> int:
    return sum(len(list((path / sub).iterdir())) for sub in ("cur", "new") if (path / sub).is_dir())


# With --postgresql: the server crmail's databases go on, one database per data dir
# (``_database``), made from the template's (``CREATE DATABASE … TEMPLATE``) for each run.
POSTGRESQL: str = ""
_DATABASES: list[str] = []


def _database(data_dir: Path) -> str:
    return "crmail_sync_" + hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{POSTGRESQL}/postgres", "-c", sql],
        check=True,
        capture_output=True,
    )


def new_database(data_dir: Path, template: Path | None = None) -> None:
    """With --postgresql, an empty database for ``data_dir`` (a copy of ``template``'s)."""
    if not POSTGRESQL:
        return
    name = _database(data_dir)
    _psql(f"DROP DATABASE IF EXISTS {name}")
    _psql(f"CREATE DATABASE {name}" + (f" TEMPLATE {_database(template)}" if template else ""))
    _DATABASES.append(name)


def drop_databases() -> None:
    for name in _DATABASES:
        _psql(f"DROP DATABASE IF EXISTS {name}")


def crmail_env(data_dir: Path, password: str = "", tree: Path = REPO) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMAIL_")}
    if POSTGRESQL:
        env["CRMAIL_DATABASE_URL"] = f"{POSTGRESQL}/{_database(data_dir)}"
    env.update(
        CRMAIL_DATA_DIR=str(data_dir),
        CRMAIL_LOG_LEVEL="WARNING",
        PYTHONPATH=str(tree),
        **{PASSWORD_VAR: password},
    )
    return env


def crmail_template(work: Workdir, tree: Path = REPO) -> Path:
    """A data dir after ``crmail init`` (migrated, one administrator), copied per run."""
    data = work.root / ("crmail-template" if tree == REPO else "crmail-template-compare")
    new_database(data)
    # Byte-compiled as an install does (scripts/_common.sh): with PYTHONDONTWRITEBYTECODE
    # set, every run would otherwise compile crmail's modules in its start-up.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "crmail")], check=True)
    env = crmail_env(data, tree=tree)
    env.update(CRMAIL_ADMIN_EMAIL="admin@example.org", CRMAIL_ADMIN_PASSWORD="bench-admin-pw-1")
    subprocess.run(
        [sys.executable, "-m", "crmail", "init"],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
    )
    return data


def _crmail_call(data: Path, port: int, box: Box, *extra: str, tree: Path = REPO) -> Run:
    entry = tree / ENTRY.relative_to(REPO)
    cmd = [sys.executable, str(entry), "--port", str(port), "--login", box.user]
    cmd += ["--password-env", PASSWORD_VAR, *extra]
    seconds, rss, out = run_measured(cmd, env=crmail_env(data, box.password, tree))
    detail = json.loads(out.strip().splitlines()[-1])
    detail["process_s"] = seconds
    return Run(detail["total_s"], rss, detail)


def _intelligence(run: Run) -> float:
    """Seconds the process spent in email intelligence's jobs (after the sync)."""
    return float(run.detail.get("jobs_s", {}).get("intelligence.analyse", 0.0))


def crmail_first(
    work: Workdir, template: Path, port: int, box: Box, *extra: str, tree: Path = REPO
) -> Run:
    data = work.fresh("crmail") / "data"
    shutil.copytree(template, data)
    new_database(data, template)
    run = _crmail_call(data, port, box, *extra, tree=tree)
    run.detail["data_dir"] = str(data)
    return run


def crmail_beside(work: Workdir, template: Path, port: int, box: Box, tree: Path = REPO) -> Run:
    """A first sync with a job worker beside it (``crmail worker``, started first, as an
    installation runs one; email intelligence off): the run ends when everything the sync
    stored is processed (``crmail_run.py --worker-beside``)."""
    data = work.fresh("crmail") / "data"
    shutil.copytree(template, data)
    new_database(data, template)
    log = data.parent / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "crmail", "worker", "--no-periodic", "--no-watch"],
            env=crmail_env(data, tree=tree),
            cwd=tree,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "worker is running" not in log.read_text():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"crmail worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        run = _crmail_call(data, port, box, "--worker-beside", "--intelligence", "off", tree=tree)
    finally:
        worker.terminate()
        worker.wait(60)
    run.detail["data_dir"] = str(data)
    return run


def crmail_command(work: Workdir, template: Path, port: int, box: Box, tree: Path = REPO) -> Run:
    """``crmail mailbox sync`` as a user runs it, on a fresh copy of the data dir: the
    whole command, start-up, sync and exit, with no job worker (the jobs it queues wait).
    The mailbox is added first, untimed (``crmail mailbox add --no-test``)."""
    data = work.fresh("crmail") / "data"
    shutil.copytree(template, data)
    new_database(data, template)
    env = crmail_env(data, box.password, tree)
    command = [sys.executable, "-m", "crmail", "mailbox"]
    where = ["--host", "127.0.0.1", "--port", str(port), "--security", "none"]
    login = ["--login", box.user, "--password-env", PASSWORD_VAR, "--no-test"]
    added = subprocess.run(
        [*command, "add", "--user", "admin@example.org", "--protocol", "imap", *where, *login],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    mailbox_id = added.stdout.split()[-1]  # the new mailbox's id
    seconds, rss, out = run_measured([*command, "sync", mailbox_id], env=env)
    return Run(seconds, rss, {"said": out.strip().splitlines()[-1:]})


def crmail_resync(data: Path, port: int, box: Box) -> Run:
    return _crmail_call(data, port, box)


# -- the benchmark -----------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    root = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", tempfile.gettempdir()],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()

    def version(cmd: list[str]) -> str:
        if shutil.which(cmd[0]) is None:  # e.g. offlineimap with --no-offlineimap
            return "not installed"
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return (proc.stdout or proc.stderr).strip().splitlines()[0]

    import django
    import zstandard

    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "RAM": f"{mem_kb / 1024**2:.1f} GiB",
        "disk": f"{root} ({tempfile.gettempdir()}; Dovecot, Maildirs and SQLite all there)",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "Django / zstandard": f"{django.__version__} / {zstandard.__version__}",
        "Dovecot": version(["dovecot", "--version"]),
        "isync (mbsync)": version(["mbsync", "--version"]),
        "offlineimap": version(["offlineimap", "--version"]),
        "load average at start": Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__(),
    }


@contextmanager
def proxy(port: int, rtt_ms: float) -> Iterator[int | None]:
    if not rtt_ms:
        yield None
        return
    with delay_proxy(port, rtt_ms) as proxied:
        yield proxied


def run_all(args: argparse.Namespace) -> tuple[list[Box], dict[str, str]]:
    info = machine()
    work = Workdir()
    print(f"work dir {work.root}", flush=True)
    sets: list[tuple[str, str, list[bytes]]] = []
    if args.mixed:
        mixed = mixed_messages(args.mixed)
        sets.append(("mixed", f"{args.mixed:,} generated mixed messages", mixed))
    if args.real != "none":
        real, what = real_messages(args.real)
        sets.append(("real", what, real))
    template = crmail_template(work)
    if args.compare:
        args.compare_template = crmail_template(work, args.compare)
    boxes: list[Box] = []
    with DovecotServer(users={}) as server:
        assert server.imap_port is not None
        for key, label, messages in sets:
            user, password = server.new_user(key)
            t0 = time.perf_counter()
            nbytes = fill(server, user, messages)
            boxes.append(Box(key, label, user, password, len(messages), nbytes))
            print(
                f"{key}: {len(messages):,} messages, {nbytes / 1e6:.0f} MB "
                f"filled in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
        del sets
        with proxy(server.imap_port, args.rtt_ms) as slow:
            for n in range(args.runs):
                for box in boxes:
                    one_round(work, template, server.imap_port, slow, box, args, n)
            if not args.no_profile:
                for box in boxes:
                    profile_round(work, template, server.imap_port, box)
    shutil.rmtree(work.root, ignore_errors=True)
    return boxes, info


def one_round(
    work: Workdir,
    template: Path,
    port: int,
    slow: int | None,
    box: Box,
    args: argparse.Namespace,
    n: int,
) -> None:
    def note(name: str, run: Run) -> None:
        box.results[name].append(run)
        extra = run.detail.get("messages", run.detail.get("fetched", ""))
        if "sync_cpu_s" in run.detail:  # crmail: CPU during the sync, its own and the machine's
            extra = (
                f"{extra}  cpu {run.detail['sync_cpu_s']:.2f} s, machine busy "
                f"{run.detail['machine_busy_s']:.2f} of {run.detail['cores']} x "
                f"{run.detail['sync_s']:.2f} s; process {run.detail['process_s']:.2f} s, "
                f"its jobs {json.dumps({k: round(v, 2) for k, v in run.detail['jobs_s'].items()})}"
            )
            if run.detail.get("processed_busy_s") is not None:
                extra += f"; machine busy to processed {run.detail['processed_busy_s']:.2f} s"
        elif "busy_s" in run.detail:
            extra = f"{extra}  machine busy {run.detail['busy_s']:.2f} s"
        print(
            f"  run {n + 1} {box.key:<5} {name:<22} {run.seconds:7.2f} s "
            f"{run.maxrss_kb / 1024:6.0f} MB  {extra}",
            flush=True,
        )

    if args.sync_only:
        for name, data, tree in _sides("crmail", template, args, n):
            run = crmail_first(work, data, port, box, tree=tree)
            note(name, run)
        return
    note("mbsync", mbsync(work, port, box))
    if args.floor:
        note("floor", floor_sync(work, port, box))
        note("floor processed", floor_sync(work, port, box, "--process"))
    if not args.no_offlineimap:
        note("offlineimap", offlineimap(work, port, box))

    def without_index() -> None:
        bare = crmail_first(work, template, port, box, "--search-index", "off")
        note("crmail no index", bare)

    # With --search-index-compare, every other round runs the sync without the index
    # first, so neither side always finds the mailbox in the page cache.
    if args.search_index_compare and n % 2:
        without_index()
    first = crmail_first(work, template, port, box)
    note("crmail", first)
    if args.command:
        note("crmail mailbox sync", crmail_command(work, template, port, box))
    if args.search_index_compare and not n % 2:
        without_index()
    if args.compare:
        other = crmail_first(work, args.compare_template, port, box, tree=args.compare)
        note("crmail compare", other)
    if args.worker_beside:
        for name, data, tree in _sides("crmail worker beside", template, args, n):
            beside = crmail_beside(work, data, port, box, tree=tree)
            note(name, beside)
    if slow is not None:
        note("mbsync rtt", mbsync(work, slow, box))
        far = crmail_first(work, template, slow, box)
        note("crmail rtt", far)
        data = Path(far.detail["data_dir"])
        note("crmail resync rtt", crmail_resync(data, slow, box))
        if args.compare:
            other = crmail_first(work, args.compare_template, slow, box, tree=args.compare)
            note("crmail compare rtt", other)


def _sides(
    name: str, template: Path, args: argparse.Namespace, n: int
) -> list[tuple[str, Path, Path]]:
    """(result name, template data dir, source tree) of this tree and, with ``--compare``,
    of the compared one (``crmail compare …``), the two taking turns going first."""
    sides = [(name, template, REPO)]
    if args.compare:
        compared = name.replace("crmail", "crmail compare", 1)
        sides.append((compared, args.compare_template, args.compare))
    return sides[:: -1 if n % 2 else 1]


def _startup_and_sync(runs: list[Run]) -> list[float]:
    """The benchmark's process less the jobs it ran after the sync: start-up and sync."""
    return [x.detail["process_s"] - sum(x.detail["jobs_s"].values()) for x in runs]


def _shown_after_sync(runs: list[Run]) -> list[float]:
    """Beside a worker: how long after the sync's end the last messages showed
    "processing" (their body text not saved yet)."""
    return [max(0.0, x.detail["bodies_s"] - x.detail["synced_s"]) for x in runs]


def profile_round(work: Workdir, template: Path, port: int, box: Box) -> None:
    timed = crmail_first(work, template, port, box, "--phases")
    phases = timed.detail["phases"]
    phases["parsing (all)"] = phases.get("pipeline submit", 0.0) + phases.get(
        "pipeline finish", 0.0
    )
    box.phases = {"total": timed.detail["sync_s"], **phases}
    print(f"  phases of {box.key}: " + json.dumps({k: round(v, 3) for k, v in phases.items()}))
    print(f"  jobs after {box.key}: " + json.dumps(timed.detail["jobs_s"]), flush=True)
    stats_file = work.root / f"profile-{box.key}.prof"
    profiled = crmail_first(work, template, port, box, "--profile", str(stats_file))
    stats = pstats.Stats(str(stats_file))
    total = profiled.detail["sync_s"]
    rows = []
    entries = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, _nc, tt, _ct, _callers) in sorted(
        entries.items(), key=lambda kv: kv[1][2], reverse=True
    )[:18]:
        where = _short(filename)
        rows.append(f"| {tt:6.2f} | {tt / total * 100:4.1f} % | `{name}` | {where}:{line} |")
    box.profile = [
        f"cProfile of one first sync ({total:.2f} s under the profiler; the syncing process "
        "only, not the parsing workers), by own time:",
        "",
        "| own s | share | function | where |",
        "| ---: | ---: | --- | --- |",
        *rows,
    ]
    print("\n".join(box.profile), flush=True)


def _against(values: list[float], base: float) -> str:
    """Two cells of a table: the values' median (min-max), and that median ÷ ``base``."""
    return f"{_stat(values)} | {statistics.median(values) / base:.2f}"


def _short(filename: str) -> str:
    for marker in ("/crmail/", "/site-packages/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# -- the report ------------------------------------------------------------------------


def _stat(values: list[float], fmt: str = "{:.2f}") -> str:
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def report(boxes: list[Box], info: dict[str, str], args: argparse.Namespace) -> str:
    if args.sync_only:
        return sync_only_report(boxes, args)
    lines = [
        f"Run of {time.strftime('%Y-%m-%d %H:%M %Z')}: `python bench/sync_bench.py "
        f"--mixed {args.mixed} --real {args.real} --rtt-ms {args.rtt_ms:g} --runs {args.runs}"
        f"{' --no-offlineimap' if args.no_offlineimap else ''}"
        f"{' --compare …' if args.compare else ''}"
        f"{' --search-index-compare' if args.search_index_compare else ''}"
        f"{' --floor' if args.floor else ''}"
        f"{' --worker-beside' if args.worker_beside else ''}"
        f"{' --command' if args.command else ''}"
        f"{' --postgresql' if POSTGRESQL else ''}`. "
        "Median of the runs, (min-max) after it.",
        "",
        "| machine | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in info.items()),
        "",
        "First sync, Dovecot on loopback, wall seconds (crmail: `open_driver` + "
        "`sync_mailbox`; the process: the whole `crmail` process with Python and Django "
        "start-up and the jobs the sync queued, run by the process after it (body text, "
        "linking, the search index); email intelligence's jobs are left out of it and "
        "given apart, as the work of the job worker after everything is processed):",
        "",
        "| mailbox | messages | MB | mbsync | offlineimap | crmail | crmail process "
        "| email intelligence s | crmail ÷ mbsync |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for box in boxes:
        r = box.results
        mb = [x.seconds for x in r["mbsync"]]
        cm = [x.seconds for x in r["crmail"]]
        ratio = statistics.median(cm) / statistics.median(mb) if mb and cm else float("nan")
        lines.append(
            f"| {box.key} | {box.count:,} | {box.nbytes / 1e6:.0f} | {_stat(mb)} "
            f"| {_stat([x.seconds for x in r['offlineimap']])} | {_stat(cm)} "
            f"| {_stat([x.detail['process_s'] - _intelligence(x) for x in r['crmail']])} "
            f"| {_stat([_intelligence(x) for x in r['crmail']])} | {ratio:.2f} |"
        )
    if args.command:
        lines += [
            "",
            "`crmail mailbox sync` itself, as a user runs it (same rounds, no job worker: "
            "the whole command, Python and Django's start-up, the sync and the exit; the "
            "jobs it queues wait), wall seconds, beside the benchmark's own process less "
            "the jobs it ran after the sync:",
            "",
            "| mailbox | mbsync | `crmail mailbox sync` | that ÷ mbsync "
            "| benchmark process, start-up and sync |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for box in boxes:
            r = box.results
            mb = statistics.median([x.seconds for x in r["mbsync"]])
            command = [x.seconds for x in r["crmail mailbox sync"]]
            own = _startup_and_sync(r["crmail"])
            lines.append(f"| {box.key} | {mb:.2f} | {_against(command, mb)} | {_stat(own)} |")
    if args.floor:
        lines += [
            "",
            "The floor (`bench/floor_sync.py`, same rounds): a plain Python first sync, "
            "500 messages a FETCH, SHA-256, crmail's header-only parse, the raw bytes "
            "appended once and fsynced per batch, one SQLite row per message; beside it "
            "crmail as a command would take it, start-up and sync (the process less the "
            "jobs it ran after the sync), wall seconds. Then the floor of everything "
            "processed (`floor_sync.py --process`: a second process parses each batch "
            "whole with crmail's parser as soon as it is fsynced and writes its words to "
            "an FTS5 table) beside crmail's process less email intelligence:",
            "",
            "| mailbox | mbsync | floor | floor ÷ mbsync | crmail, start-up and sync "
            "| that ÷ mbsync | floor, everything processed | that ÷ mbsync "
            "| crmail, everything processed |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for box in boxes:
            r = box.results
            mb = statistics.median([x.seconds for x in r["mbsync"]])
            low = [x.seconds for x in r["floor"]]
            command = _startup_and_sync(r["crmail"])
            processed = [x.seconds for x in r["floor processed"]]
            everything = [x.detail["process_s"] - _intelligence(x) for x in r["crmail"]]
            lines.append(
                f"| {box.key} | {mb:.2f} | {_against(low, mb)} | {_against(command, mb)} "
                f"| {_against(processed, mb)} | {_stat(everything)} |"
            )
    if args.worker_beside:
        lines += [
            "",
            "With a job worker beside the sync (`crmail worker`, started before it, as an "
            "installation runs one; email intelligence off), same rounds: the sync's own "
            "time beside the worker and without it (the `crmail` column above), start-up "
            "and sync (the process less its wait), everything processed (the process, which "
            "ends when no message is processing and the search index has caught up), "
            "how long processing went on after the sync ended, and how long after it the "
            'last messages showed "processing" (their body text not saved yet), against '
            "the sync's own time:",
            "",
            "| mailbox | mbsync | crmail sync, worker beside | crmail sync alone "
            "| start-up and sync | everything processed | that ÷ mbsync "
            '| processing after the sync | "processing" shown after the sync | that ÷ sync |',
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        cpu_lines = [
            "",
            "The CPU those runs used: the CPU seconds of every process of the machine (the "
            "database's, Dovecot's, the worker's and the sync's) from the sync process's start "
            "to everything processed, and mbsync's whole run (Dovecot's too); then what "
            f"{os.cpu_count()} cores fully busy would need for crmail's, against mbsync's wall "
            "time:",
            "",
            "| mailbox | mbsync wall s | mbsync CPU s | crmail, everything processed: CPU s "
            "| that ÷ cores, s | that ÷ mbsync's wall |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for box in boxes:
            r = box.results
            mb = statistics.median([x.seconds for x in r["mbsync"]])
            runs = r["crmail worker beside"]
            # The process ends when everything is processed: its wall time, less the
            # wait after its sync, is the start-up and sync.
            everything = [x.detail["process_s"] for x in runs]
            after = [x.detail["processed_s"] - x.detail["synced_s"] for x in runs]
            synced = [e - a for e, a in zip(everything, after, strict=True)]
            shown = _shown_after_sync(runs)
            against = statistics.median(shown) / statistics.median([x.seconds for x in runs])
            lines.append(
                f"| {box.key} | {mb:.2f} | {_stat([x.seconds for x in runs])} "
                f"| {_stat([x.seconds for x in r['crmail']])} | {_stat(synced)} "
                f"| {_against(everything, mb)} "
                f"| {_stat(after)} | {_stat(shown)} | {against:.2f} |"
            )
            busy = [x.detail["processed_busy_s"] for x in runs]
            floor = statistics.median(busy) / (os.cpu_count() or 1)
            cpu_lines.append(
                f"| {box.key} | {mb:.2f} | {_stat([x.detail['busy_s'] for x in r['mbsync']])} "
                f"| {_stat(busy)} | {floor:.2f} | {floor / mb:.2f} |"
            )
        lines += cpu_lines
    lines += [
        "",
        "Peak memory (peak RSS of the client process, MB):",
        "",
        "| mailbox | mbsync | offlineimap | crmail | crmail at RTT |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for box in boxes:
        r = box.results
        cells = [
            _stat([x.maxrss_kb / 1024 for x in r[name]], "{:.0f}")
            for name in ("mbsync", "offlineimap", "crmail", "crmail rtt")
        ]
        lines.append(f"| {box.key} | {' | '.join(cells)} |")
    if args.rtt_ms:
        lines += [
            "",
            f"With {args.rtt_ms:g} ms added round-trip time (delay proxy), messages per second "
            "of the first sync (crmail: `open_driver` + `sync_mailbox`), and a resync with "
            "nothing changed (QRESYNC): `sync_mailbox` on a connected driver, and with "
            "`open_driver` (connect, greeting, login, ENABLE) before it:",
            "",
            "| mailbox | mbsync msg/s | crmail msg/s | crmail s | resync s "
            "| resync incl. connect s |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for box in boxes:
            r = box.results
            lines.append(
                f"| {box.key} "
                f"| {_stat([box.count / x.seconds for x in r['mbsync rtt']], '{:.0f}')} "
                f"| {_stat([box.count / x.seconds for x in r['crmail rtt']], '{:.0f}')} "
                f"| {_stat([x.seconds for x in r['crmail rtt']])} "
                f"| {_stat([x.detail['sync_s'] for x in r['crmail resync rtt']], '{:.3f}')} "
                f"| {_stat([x.seconds for x in r['crmail resync rtt']], '{:.3f}')} |"
            )
    if args.compare:
        lines += [
            "",
            f"Side by side in the same rounds, crmail as in `{args.compare_label}` "
            "(`--compare`): first sync seconds on loopback and messages per second at RTT:",
            "",
            "| mailbox | crmail | compared | crmail msg/s at RTT | compared msg/s at RTT |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for box in boxes:
            r = box.results
            lines.append(
                f"| {box.key} | {_stat([x.seconds for x in r['crmail']])} "
                f"| {_stat([x.seconds for x in r['crmail compare']])} "
                f"| {_stat([box.count / x.seconds for x in r['crmail rtt']], '{:.0f}')} "
                f"| {_stat([box.count / x.seconds for x in r['crmail compare rtt']], '{:.0f}')} |"
            )
        if args.worker_beside:
            lines += [
                "",
                "With a job worker beside the sync, the two taking turns going first: "
                "everything processed (the process, seconds), how long after the sync the "
                'last messages showed "processing", and the CPU seconds of every process '
                "of the machine until everything was processed:",
                "",
                '| mailbox | crmail | compared | crmail "processing" after the sync '
                "| compared | crmail CPU s | compared CPU s |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            ]

            for box in boxes:
                ours = box.results["crmail worker beside"]
                theirs = box.results["crmail compare worker beside"]
                lines.append(
                    f"| {box.key} | {_stat([x.detail['process_s'] for x in ours])} "
                    f"| {_stat([x.detail['process_s'] for x in theirs])} "
                    f"| {_stat(_shown_after_sync(ours))} | {_stat(_shown_after_sync(theirs))} "
                    f"| {_stat([x.detail['processed_busy_s'] for x in ours])} "
                    f"| {_stat([x.detail['processed_busy_s'] for x in theirs])} |"
                )
    if args.search_index_compare:
        lines += [
            "",
            "First sync with and without the search index (same rounds; without: the "
            "receiver that queues the index jobs disconnected in the child). The index jobs "
            "the sync queued were then run by the child, one after another, as a job worker "
            "beside the sync would run them; their time is not in the sync's:",
            "",
            "| mailbox | sync with index s | sync without s | cost of the index "
            "| queued consumers' jobs s (index and the rest) | msg/s through them | sync msg/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for box in boxes:
            r = box.results
            with_ = [x.seconds for x in r["crmail"]]
            without = [x.seconds for x in r["crmail no index"]]
            jobs = [x.detail.get("jobs_s", {}).get("events.dispatch", 0.0) for x in r["crmail"]]
            cost = statistics.median(with_) / statistics.median(without) - 1
            lines.append(
                f"| {box.key} | {_stat(with_)} | {_stat(without)} | {cost * 100:+.1f} % "
                f"| {_stat(jobs)} | {box.count / statistics.median(jobs):,.0f} "
                f"| {box.count / statistics.median(with_):,.0f} |"
            )
    if any(box.phases for box in boxes):
        lines += [
            "",
            "Where crmail's first sync spends its time (one run with timers around the steps "
            "`sync_mailbox` calls, in the syncing process only: parsing in the worker "
            "processes overlaps the fetch and shows only as waiting; indented rows are part "
            "of the row above them; seconds and share of `sync_mailbox`):",
            "",
            "| step | " + " | ".join(box.key for box in boxes) + " |",
            "| --- | " + " | ".join("---:" for _ in boxes) + " |",
        ]
        for name, label in PHASES:
            cells = []
            for box in boxes:
                total = box.phases.get("total", 0.0)
                value = box.phases.get(name, 0.0)
                if name == "rest":
                    value = total - sum(box.phases.get(k, 0.0) for k in TOP_PHASES)
                elif name.endswith(" other"):
                    parent = name.removesuffix(" other")
                    value = box.phases.get(parent, 0.0) - sum(
                        box.phases.get(k, 0.0) for k in NESTED[parent]
                    )
                cells.append(f"{value:.2f} s ({value / total * 100:.0f} %)" if total else "n/a")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for box in boxes:
        if box.profile:
            lines += ["", f"**{box.key}** — " + box.profile[0], *box.profile[1:]]
    return "\n".join(lines) + "\n"


def sync_only_report(boxes: list[Box], args: argparse.Namespace) -> str:
    """``--sync-only``: crmail's first sync on loopback against the compared tree's."""
    lines = [
        f"Run of {time.strftime('%Y-%m-%d %H:%M %Z')}, `--sync-only --runs {args.runs}`: "
        "crmail's first sync (`open_driver` + `sync_mailbox`, seconds, median (min-max)) "
        f"and `{args.compare_label}` in the same rounds, alternating.",
        "",
        "| mailbox | crmail | compared | crmail ÷ compared |",
        "| --- | ---: | ---: | ---: |",
    ]
    for box in boxes:
        ours = [x.seconds for x in box.results["crmail"]]
        theirs = [x.seconds for x in box.results["crmail compare"]]
        ratio = statistics.median(ours) / statistics.median(theirs) if theirs else float("nan")
        lines.append(f"| {box.key} | {_stat(ours)} | {_stat(theirs)} | {ratio:.2f} |")
    return "\n".join(lines) + "\n"


def write_out(path: Path, text: str) -> None:
    block = f"{MARK_START}\n{text}{MARK_END}\n"
    if path.exists():
        old = path.read_text()
        if MARK_START in old and MARK_END in old:
            head, rest = old.split(MARK_START, 1)
            tail = rest.split(MARK_END, 1)[1].lstrip("\n")
            path.write_text(head + block + tail)
            return
    path.write_text("# Benchmarks\n\n" + block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mixed", type=int, default=4000, help="generated messages (0: none)")
    parser.add_argument("--real", default="auto", help="auto, a folder of messages, or none")
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-offlineimap", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="another crmail tree (e.g. a copy of the last commit) to run in the same rounds",
    )
    parser.add_argument("--compare-label", default="the compared tree")
    parser.add_argument(
        "--postgresql",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432",
        default="",
        help="crmail's database on this PostgreSQL server (a fresh one per run) instead of "
        "SQLite in its data dir",
    )
    parser.add_argument(
        "--search-index-compare",
        action="store_true",
        help="also run each first sync without the search index (a benchmark switch)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also run bench/floor_sync.py in each round: a plain Python first sync (no "
        "framework, no compression, no indexes), the floor under crmail's on this machine, "
        "and with --process (everything processed too)",
    )
    parser.add_argument(
        "--worker-beside",
        action="store_true",
        help="also run each first sync with a job worker beside it (`crmail worker`, "
        "started first) and measure until everything is processed",
    )
    parser.add_argument(
        "--command",
        action="store_true",
        help="also time `crmail mailbox sync` itself in each round, as a user runs it (the "
        "whole command, no job worker)",
    )
    parser.add_argument(
        "--sync-only",
        action="store_true",
        help="crmail's first syncs alone (with --compare's), no other client, no RTT round, "
        "the queued jobs not run: a quick side-by-side measurement of a change",
    )
    args = parser.parse_args()
    if args.sync_only:
        os.environ["BENCH_SKIP_JOBS"] = "1"  # passed on to each crmail run
    # Started in the background, a shell ignores SIGINT for us: end cleanly on either
    # signal, so Dovecot and the temp dirs go away.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    global POSTGRESQL
    POSTGRESQL = args.postgresql.rstrip("/")
    try:
        boxes, info = run_all(args)
    finally:
        drop_databases()
    if POSTGRESQL:
        info["database"] = f"PostgreSQL at {POSTGRESQL} (a fresh database per run)"
    text = report(boxes, info, args)
    print(text)
    if args.out:
        write_out(args.out, text)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
