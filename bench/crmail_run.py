"""One crmail sync of one IMAP mailbox, in a process of its own; prints JSON on stdout.

Run by ``sync_bench.py`` with ``CRMAIL_DATA_DIR`` pointing at a data dir that ``crmail
init`` prepared (a copy per run, so each first sync starts from an empty database):

    python bench/crmail_run.py --port P --login U --password-env VAR [--phases] [--profile F]

The first call creates the Mailbox row; a later call in the same data dir resyncs it.
Timed: ``open_driver`` (connect, login, capabilities) and ``sync_mailbox`` separately.
``--phases`` wraps the functions the sync calls with timers (fetch, sha256 and zstd in the
preparing thread, the pack write, message, blob and location inserts, parse pipeline,
saving parse results, threads) without changing crmail's code;
``--profile`` runs the sync under cProfile and writes the stats to F (this process only:
the parsing workers are not profiled); ``--parse-workers N`` overrides the number of
parsing processes (0: parse in the syncing process, as before the pipeline); ``--no-events``
replaces ``outbox.record_many`` with a no-op in this process (``events_bench.py`` compares).
``--search-index off`` measures the sync without the search index: the index's consumer
of the event outbox is unregistered in this process (a benchmark switch, not a setting).
Otherwise the sync queues the consumers' jobs as in production (``events.dispatch``, one
per consumer after a commit; linking runs as the commit returns), and once it has
finished this process runs the queued jobs itself, timed per job name (``jobs_s``): what a
job worker beside the sync spends on what it stored. With ``--worker-beside``, a job
worker already running on the same data dir (``crmail worker``, as an installation runs
one) takes them as they come, and this process waits after its sync until everything is
processed (no message ``processing``, the search index caught up with the outbox) and
ends then; ``processed_s`` is that moment. ``--intelligence off`` turns email
intelligence off for the organisation first (its setting), so that a worker beside does
not analyse the mail either.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchenv import machine_busy

Timers = dict[str, float]


def _timed(timers: Timers, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timers[name] += time.perf_counter() - start

    return wrapper


def _timed_iter(timers: Timers, name: str, it: Iterator[Any]) -> Iterator[Any]:
    while True:
        start = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            timers[name] += time.perf_counter() - start
            return
        timers[name] += time.perf_counter() - start
        yield item


def _wrap(timers: Timers, module: Any, name: str, label: str) -> None:
    """Time ``module.name`` under ``label``; a function crmail no longer has is left out
    (the phase table then has no row for it)."""
    if hasattr(module, name):
        setattr(module, name, _timed(timers, label, getattr(module, name)))


def _time_commits(timers: Timers, sync: Any) -> None:
    """Within each batch's transaction (``_store_batch``): its COMMIT, and the consumers
    run right after it in this process (``outbox._nudge``: the eager ones, linking, run
    here; sequencing), apart; a nudge after the last batch counts in the rest."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    from crmail.events import outbox

    state = {"in_batch": False, "in_nudge": False}
    store_batch, nudge = sync._store_batch, outbox._nudge
    commit = BaseDatabaseWrapper._commit

    def batch(*args: Any, **kwargs: Any) -> Any:
        state["in_batch"] = True
        try:
            return store_batch(*args, **kwargs)
        finally:
            state["in_batch"] = False

    def nudged(*args: Any, **kwargs: Any) -> Any:
        if not state["in_batch"]:
            return nudge(*args, **kwargs)
        state["in_nudge"] = True
        start = time.perf_counter()
        try:
            return nudge(*args, **kwargs)
        finally:
            timers["consumers after the commit"] += time.perf_counter() - start
            state["in_nudge"] = False

    def committed(self: Any) -> Any:
        if not state["in_batch"] or state["in_nudge"]:
            return commit(self)
        start = time.perf_counter()
        try:
            return commit(self)
        finally:
            timers["COMMIT"] += time.perf_counter() - start

    sync._store_batch = batch
    outbox._nudge = nudged
    BaseDatabaseWrapper._commit = committed  # type: ignore[method-assign]


def install_phase_timers(driver: Any) -> Timers:
    """Wrap, in their modules' namespaces, the steps ``sync_mailbox`` goes through.

    Only this process is timed: parsing in the pipeline's worker processes shows up as
    the time this process spends waiting for them (in ``ParsePipeline.finish``).
    ``ingest.parse_many`` itself is not wrapped (the pipeline hands it to the workers by
    name), so parsing done in this process is timed through ``parse.parse_message``.
    """
    from crmail.mail import ingest, parse, store
    from crmail.mailboxes import sync

    timers: Timers = defaultdict(float)
    from crmail.blobs import store as blob_store

    # Hashing and compressing run in the sync's preparing thread (``store.prepare``):
    # timed there, beside the fetch rather than inside it.
    _wrap(timers, store, "content_hash", "sha256 (thread)")
    _wrap(timers, store, "pack", "zstd compress (thread)")
    _wrap(timers, store, "_insert_new", "insert new")
    _wrap(timers, blob_store, "write", "pack write")
    # Inside ``blob_store.overlapped`` the pack is built and written by another thread:
    # timed there, and the batch's wait for it at the end of its transaction.
    from crmail.blobs import backends

    for backend_class in (backends.FileBackend, backends.S3Backend):
        backend_class.write = _timed(timers, "pack write (thread)", backend_class.write)  # type: ignore[method-assign]
    overlapped = blob_store.overlapped

    @contextmanager
    def waited() -> Iterator[None]:
        block = overlapped()
        block.__enter__()
        try:
            yield
        except BaseException:
            if not block.__exit__(*sys.exc_info()):
                raise
        else:
            start = time.perf_counter()
            block.__exit__(None, None, None)
            timers["waiting for the pack"] += time.perf_counter() - start

    blob_store.overlapped = waited  # type: ignore[assignment]
    _wrap(timers, blob_store, "record", "INSERT Blob")
    _time_commits(timers, sync)
    _wrap(timers, sync, "_store_batch", "store batch (all)")
    _wrap(timers, sync, "_headers_first", "waiting for header fields")
    _wrap(timers, sync, "mark_copies", "copies of sent mail")
    first = ingest.HeadersFirst
    first.describe = _timed(timers, "header fields", first.describe)  # type: ignore[method-assign]
    pipeline = ingest.ParsePipeline
    pipeline.read_headers = _timed(timers, "header sections", pipeline.read_headers)  # type: ignore[method-assign]
    _wrap(timers, ingest, "raw_bytes_many", "zstd decompress")
    _wrap(timers, parse, "parse_message", "MIME parse here")
    _wrap(timers, ingest, "save_parsed", "save_parsed (all)")
    _wrap(timers, ingest, "_assign_threads", "threads")
    _wrap(timers, ingest, "_save_fields", "UPDATE Message")
    original_insert = ingest.insert_rows

    def insert(model: Any, *a: Any, **k: Any) -> Any:
        start = time.perf_counter()
        try:
            return original_insert(model, *a, **k)
        finally:
            timers[f"INSERT {model.__name__}"] += time.perf_counter() - start

    for module in (ingest, sync):  # each imported the writer by name
        module.insert_rows = insert  # type: ignore[attr-defined]
    # What saving parse results does besides its own statements: the receivers of
    # ``results_saved`` (locations and conversations follow, copies of sent mail marked)
    # and the events it records.
    from crmail.events import outbox
    from crmail.mailboxes import conversations, receivers

    receivers.copy_message_fields = _timed(
        timers, "locations follow", receivers.copy_message_fields
    )
    _wrap(timers, conversations, "refresh", "conversations refresh")
    _wrap(timers, receivers, "mark_copies", "copies of sent mail")
    _wrap(timers, outbox, "record_many", "events recorded")
    pipeline.submit = _timed(timers, "pipeline submit", pipeline.submit)  # type: ignore[method-assign]
    pipeline.finish = _timed(timers, "pipeline finish", pipeline.finish)  # type: ignore[method-assign]
    _wrap(timers, sync, "parse_pending", "parse_pending")
    from django.db.models.query import QuerySet

    for method in ("bulk_create", "bulk_update", "delete"):
        original = getattr(QuerySet, method)

        def by_model(
            self: QuerySet, *a: Any, _orig: Any = original, _m: str = method, **k: Any
        ) -> Any:
            start = time.perf_counter()
            try:
                return _orig(self, *a, **k)
            finally:
                timers[f"{_m} {self.model.__name__}"] += time.perf_counter() - start

        setattr(QuerySet, method, by_model)
    fetch = driver.fetch
    driver.fetch = lambda *a, **k: _timed_iter(timers, "IMAP fetch", fetch(*a, **k))
    prepared = sync._prepared
    sync._prepared = lambda *a: _timed_iter(timers, "fetch (all)", prepared(*a))  # type: ignore[assignment]
    sql_log = os.environ.get("BENCH_SQL_LOG")  # FILE: seconds per statement, slowest first
    if sql_log:
        _time_statements(sql_log)
    return timers


_STATEMENTS: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])


def _time_statements(path: str) -> None:
    """Seconds spent per SQL statement (its first 160 characters) by this process's
    database connection during the sync, written to ``path`` as JSON after it
    (``write_statements``)."""
    from django.db import connections

    connection = connections["default"]
    spent = _STATEMENTS

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = spent[" ".join(sql.split())[:160]]
            entry[0] += time.perf_counter() - start
            entry[1] += 1

    connection.execute_wrappers.append(timed)
    commit = type(connection)._commit

    def timed_commit(self: Any) -> Any:
        start = time.perf_counter()
        try:
            return commit(self)
        finally:
            spent["COMMIT"][0] += time.perf_counter() - start
            spent["COMMIT"][1] += 1

    type(connection)._commit = timed_commit  # type: ignore[method-assign]


def write_statements() -> None:
    path = os.environ.get("BENCH_SQL_LOG")
    if path and _STATEMENTS:
        ranked = sorted(_STATEMENTS.items(), key=lambda kv: -kv[1][0])[:25]
        Path(path).write_text(json.dumps([[round(s, 3), n, sql] for sql, (s, n) in ranked]))


def _cpu_seconds() -> float:
    """User and system CPU of this process and of its children waited for (parsing
    workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_queued_jobs(leave: frozenset[str] = frozenset()) -> dict[str, float]:
    """Run the jobs the sync queued, here and one by one; seconds per job name. Jobs
    named in ``leave`` are taken off the queue unrun."""
    from django.utils.module_loading import autodiscover_modules
    from huey.contrib.djhuey import HUEY

    autodiscover_modules("tasks")
    spent: dict[str, float] = defaultdict(float)
    if HUEY.immediate:
        return spent
    while (task := HUEY.dequeue()) is not None:
        if task.name in leave:
            continue
        start = time.perf_counter()
        HUEY.execute(task)
        spent[task.name] += time.perf_counter() - start
    return dict(spent)


def processing() -> bool:
    """Whether some message still shows "processing" (its body text not saved yet)."""
    from crmail.mail.models import Message, ParseState

    return Message.objects.filter(parse_state=ParseState.PROCESSING).exists()


def processed() -> bool:
    """Whether everything a sync stored is processed: no message ``processing``, every
    committed event sequenced, and no event for the bodies or the search index after
    their places (an event of other kinds after them waits for no one)."""
    from crmail.events.models import ConsumerState, Event
    from crmail.events.registry import CONSUMERS

    if processing():
        return False
    if Event.objects.filter(position__isnull=True).exists():
        return False
    for name in ("bodies", "search"):
        place = ConsumerState.objects.filter(name=name).values_list("position", flat=True)
        waiting = Event.objects.filter(kind__in=CONSUMERS[name].kinds, position__gt=place[:1])
        if waiting.exists():
            return False
    return True


def wait_processed(limit: float = 600.0) -> tuple[float, float]:
    """Wait for a job worker beside this process to process what the sync stored; the
    ``time.perf_counter()`` when no message showed "processing" any more (their body
    text, snippets and attachments saved), and when everything was processed."""
    deadline = time.perf_counter() + limit
    bodies: float | None = None
    while True:
        now = time.perf_counter()
        if bodies is None and not processing():
            bodies = now
        if bodies is not None and processed():
            return bodies, now
        if now > deadline:
            raise SystemExit("the job worker beside did not process the mail in time")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--login", required=True)
    parser.add_argument("--password-env", required=True)
    parser.add_argument("--phases", action="store_true")
    parser.add_argument("--profile", default="")
    parser.add_argument(
        "--parse-workers", type=int, default=None, help="parsing processes (0: parse inline)"
    )
    parser.add_argument(
        "--no-events",
        action="store_true",
        help="record no events (this process only: what the outbox costs a sync)",
    )
    parser.add_argument("--search-index", choices=("on", "off"), default="on")
    parser.add_argument(
        "--worker-beside",
        action="store_true",
        help="a job worker runs the queued jobs; wait for everything to be processed",
    )
    parser.add_argument("--intelligence", choices=("on", "off"), default="on")
    args = parser.parse_args()

    t_start, busy_start = time.perf_counter(), machine_busy()
    from crmail.config.commands.base import setup_django

    # As the crmail command starts (crmail.config.cli.main): no collection until Django is
    # set up, then the start-up's objects frozen.
    gc.disable()
    setup_django()
    gc.freeze()
    gc.enable()
    from crmail.mail.models import Message, ParseState
    from crmail.mailboxes.connect import open_driver
    from crmail.mailboxes.models import Mailbox, Security
    from crmail.mailboxes.sync import sync_mailbox
    from crmail.people.actions import first_admin

    if args.no_events:  # a bench-only switch, never a setting: writers call record_many
        from crmail.events import outbox

        outbox.record_many = lambda events: None
    if args.parse_workers is not None:
        from crmail.jobs import worker_process

        worker_process.default_workers = lambda: args.parse_workers
    if args.search_index == "off":  # the index's consumer of the outbox, unregistered here
        from crmail.events.registry import CONSUMERS

        CONSUMERS.pop("search", None)
    if args.intelligence == "off":  # the organisation's switch, as an administrator sets it
        from crmail.intelligence.models import IntelligenceSetting

        IntelligenceSetting.objects.update_or_create(pk=1, defaults={"enabled": False})
    t_django = time.perf_counter()
    mailbox = Mailbox.objects.filter(login=args.login).first()
    first = mailbox is None
    if mailbox is None:
        mailbox = Mailbox.objects.create(
            owner=first_admin(),
            email=f"{args.login}@example.org",
            host="127.0.0.1",
            port=args.port,
            security=Security.NONE,
            login=args.login,
            secret=os.environ[args.password_env],
        )
    elif mailbox.port != args.port:
        Mailbox.objects.filter(pk=mailbox.pk).update(port=args.port)
        mailbox.refresh_from_db()

    t0 = time.perf_counter()
    driver = open_driver(mailbox)
    t1 = time.perf_counter()
    timers = install_phase_timers(driver) if args.phases else None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu_before, busy_before = _cpu_seconds(), machine_busy()
    report = sync_mailbox(mailbox, driver)
    cpu_sync, busy_sync = _cpu_seconds() - cpu_before, machine_busy() - busy_before
    if args.profile:
        profiler.disable()
        profiler.dump_stats(args.profile)
    t2 = time.perf_counter()
    driver.close()
    # The steps of the sync alone: the jobs below (bodies, the index) run the same code.
    synced_phases = dict(timers) if timers is not None else None
    write_statements()

    jobs_profile = os.environ.get("BENCH_JOBS_PROFILE")  # files FILE.PID: the jobs profiled
    processed_s = bodies_s = processed_busy_s = None
    if args.worker_beside:  # the worker beside runs them
        jobs = {}
        bodies_at, processed_at = wait_processed()
        processed_busy_s = machine_busy() - busy_start
        processed_s, bodies_s = processed_at - t_start, bodies_at - t_start
    elif jobs_profile:
        import cProfile

        jobs_profiler = cProfile.Profile()
        jobs = jobs_profiler.runcall(run_queued_jobs)
        jobs_profiler.dump_stats(f"{jobs_profile}.{os.getpid()}")
    elif os.environ.get("BENCH_SKIP_JOBS") == "1":  # sync_bench --sync-only: the sync alone
        jobs = {}
    else:  # BENCH_SKIP_JOBS=NAME,NAME: those jobs left unrun (email intelligence's, say)
        jobs = run_queued_jobs(
            frozenset(filter(None, os.environ.get("BENCH_SKIP_JOBS", "").split(",")))
        )
    out: dict[str, Any] = {
        "jobs_s": jobs,
        "first": first,
        "django_setup_s": t_django - t_start,
        "connect_s": t1 - t0,
        "sync_s": t2 - t1,
        "total_s": t2 - t0,
        "synced_s": t2 - t_start,  # from this process's start to the sync's end
        "processed_s": processed_s,  # and to everything processed (--worker-beside)
        "bodies_s": bodies_s,  # and to no message "processing" (--worker-beside)
        "fetched": report.fetched,
        "bytes": report.bytes,
        "errors": report.errors,
        "messages_stored": Message.objects.count(),
        "parse_failed": Message.objects.filter(parse_state=ParseState.FAILED).count(),
        "parse_pending": Message.objects.filter(parse_state=ParseState.PENDING).count(),
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        # CPU seconds during the sync: this process and its parsing workers; and every
        # process of the machine (Dovecot too), against cores x the sync's wall time.
        "sync_cpu_s": cpu_sync,
        "machine_busy_s": busy_sync,
        # From this process's start to everything processed (--worker-beside): the CPU
        # seconds of every process of the machine, the worker, Dovecot and the database's.
        "processed_busy_s": processed_busy_s,
        "cores": os.cpu_count(),
    }
    if synced_phases is not None:
        # The Message INSERT (its own statement) is what _insert_new spends besides
        # writing the pack and its index rows.
        synced_phases["INSERT Message"] = (
            synced_phases.pop("insert new", 0.0)
            - synced_phases.get("pack write", 0.0)
            - synced_phases.get("INSERT Blob", 0.0)
            - synced_phases.get("header fields", 0.0)
        )
        out["phases"] = synced_phases
    print(json.dumps(out))


if __name__ == "__main__":
    main()
