"""Running huey consumers: embedded beside the web server, or alone as ``crmail worker``.

Several consumers may share one queue; only the one holding the ``periodic`` lease
enqueues periodic jobs, so each runs once per period whatever the number of workers.
Ctrl-C and SIGTERM both let the jobs under way finish before the worker stops.

An idle worker looks at the queue at least every ``MAX_DELAY``; on the SQLite queue (the
default) it also looks as soon as the queue's file changes (``QueueWatch``), so a job
queued by another process starts within a few milliseconds, not up to a second later.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import timedelta

from django.db import close_old_connections
from django.utils.module_loading import autodiscover_modules
from huey.consumer import Consumer, Scheduler, Worker
from huey.contrib.djhuey import HUEY
from huey.storage import SqliteStorage

from crmail.jobs import leases

log = logging.getLogger(__name__)

PERIODIC_LEASE = "periodic"
PERIODIC_LEASE_TTL = timedelta(seconds=150)
# The longest an idle worker waits before it looks at the queue again ("Sync now" starts
# within it on a queue that cannot be watched).
MAX_DELAY = 1.0
# How often the SQLite queue's files are looked at (two ``stat`` calls a look, in one
# thread a consumer): every ``WATCH_STEP`` after a change, less often the longer nothing
# changes, down to every ``WATCH_STEP_IDLE`` (an idle worker costs next to nothing).
WATCH_STEP = 0.01
WATCH_STEP_IDLE = 0.1


class QueueWatch:
    """Wakes a consumer's idle workers when the SQLite queue's files (the database and
    its write-ahead log) change: any job queued, by any process, changes one of them. One
    thread looks at them while the consumer runs (``WATCH_STEP``). A change it misses
    (two in the same instant of the file system's clock) costs only the wait the worker
    would have had without it."""

    def __init__(self, filename: str, stop: threading.Event) -> None:
        self._files = (filename, f"{filename}-wal")
        self._stop = stop
        self._changed = threading.Condition()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def _stamp(self) -> tuple[tuple[int, int] | None, ...]:
        stamps = []
        for name in self._files:
            try:
                found = os.stat(name)
            except OSError:
                stamps.append(None)
            else:
                stamps.append((found.st_mtime_ns, found.st_size))
        return tuple(stamps)

    def _run(self) -> None:
        stamp = self._stamp()
        step = WATCH_STEP
        while not self._stop.wait(step):
            now = self._stamp()
            step = min(step * 1.5, WATCH_STEP_IDLE)
            if now != stamp:
                stamp, step = now, WATCH_STEP
                with self._changed:
                    self._generation += 1
                    self._changed.notify_all()
        with self._changed:  # stopping: no worker waits out its delay
            self._generation += 1
            self._changed.notify_all()

    def wait(self, timeout: float) -> None:
        """Return after ``timeout`` seconds, or sooner when the queue's files change or
        the consumer stops."""
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="crmail-queue-watch", daemon=True
                )
                self._thread.start()
        with self._changed:
            seen = self._generation
            self._changed.wait_for(lambda: self._generation != seen or self._stop.is_set(), timeout)


class WatchingWorker(Worker):
    """huey's worker, which, idle, waits on the queue's ``QueueWatch`` when it has one."""

    watch: QueueWatch | None = None

    def sleep(self) -> None:
        if self.watch is None:
            super().sleep()
            return
        delay = min(self.delay, self.max_delay)
        self.watch.wait(delay)
        self.delay = delay * self.backoff


class LeaderScheduler(Scheduler):
    """A scheduler that enqueues periodic jobs only while this process holds the lease."""

    holder = leases.process_identity()

    def enqueue_periodic_tasks(self, now):  # type: ignore[no-untyped-def]
        close_old_connections()
        try:
            leader = leases.acquire(PERIODIC_LEASE, self.holder, PERIODIC_LEASE_TTL)
        except Exception:
            log.exception("could not check the periodic-jobs lease; skipping this minute")
            return
        finally:
            close_old_connections()
        if leader:
            super().enqueue_periodic_tasks(now)


class CrmailConsumer(Consumer):
    """huey's consumer with the lease-holding scheduler."""

    worker_class = WatchingWorker

    def __init__(self, *args, embedded: bool = False, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self.embedded = embedded
        self.watch: QueueWatch | None = None
        super().__init__(*args, **kwargs)
        # huey stops at once on SIGTERM, abandoning the jobs under way (a message half
        # sent: a scheduled email is then marked "may or may not have gone out"). Service
        # managers stop with SIGTERM: it finishes them first, like Ctrl-C; a second
        # signal stops at once.
        self._signal_actions[signal.SIGTERM] = self._signal_actions[signal.SIGINT]

    def _create_worker(self) -> Worker:
        worker = super()._create_worker()
        storage = self.huey.storage
        if isinstance(worker, WatchingWorker) and isinstance(storage, SqliteStorage):
            if self.watch is None:
                self.watch = QueueWatch(storage.filename, self.stop_flag)
            worker.watch = self.watch
        return worker

    def _create_scheduler(self) -> LeaderScheduler:
        return LeaderScheduler(
            huey=self.huey,
            stop_flag=self.stop_flag,
            interval=self.scheduler_interval,
            periodic=self.periodic,
        )

    def _set_signal_handlers(self) -> None:
        # Embedded in `crmail serve`, the web server owns the process's signals.
        if not self.embedded:
            super()._set_signal_handlers()


def make_consumer(workers: int, *, periodic: bool = True, embedded: bool = False) -> CrmailConsumer:
    """A consumer of crmail's queue with ``workers`` threads."""
    autodiscover_modules("tasks")  # every app's jobs, as huey's own run_huey does
    return CrmailConsumer(
        HUEY,
        workers=workers,
        worker_type="thread",
        periodic=periodic,
        embedded=embedded,
        check_worker_health=True,
        max_delay=MAX_DELAY,
    )
