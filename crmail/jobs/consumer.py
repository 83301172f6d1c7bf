"""Running huey consumers: embedded beside the web server, or alone as ``crmail worker``.

Several consumers may share one queue; only the one holding the ``periodic`` lease
enqueues periodic jobs, so each runs once per period whatever the number of workers.
Ctrl-C and SIGTERM both let the jobs under way finish before the worker stops.
"""

from __future__ import annotations

import logging
import signal
from datetime import timedelta

from django.db import close_old_connections
from django.utils.module_loading import autodiscover_modules
from huey.consumer import Consumer, Scheduler
from huey.contrib.djhuey import HUEY

from crmail.jobs import leases

log = logging.getLogger(__name__)

PERIODIC_LEASE = "periodic"
PERIODIC_LEASE_TTL = timedelta(seconds=150)


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

    def __init__(self, *args, embedded: bool = False, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self.embedded = embedded
        super().__init__(*args, **kwargs)
        # huey stops at once on SIGTERM, abandoning the jobs under way (a message half
        # sent: a scheduled email is then marked "may or may not have gone out"). Service
        # managers stop with SIGTERM: it finishes them first, like Ctrl-C; a second
        # signal stops at once.
        self._signal_actions[signal.SIGTERM] = self._signal_actions[signal.SIGINT]

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
        # An idle worker looks at the queue at least every second ("Sync now" starts soon).
        max_delay=1.0,
    )
