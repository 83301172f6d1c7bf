"""Worker processes for CPU work, and keeping them from outliving the process that started
them.

``worker_pool`` starts processes from a bare interpreter; ``shared_pool`` is a process's
own, started at first use and kept: the job worker hands it the bodies' parse after a
first sync and the search index's words (they do not run at the same time: the index
gives way to the bodies), each told to it once in the process's life.

A sync hands parsing to worker processes (``ingest.ParsePipeline``). When the syncing
process is killed (kill -9, out of memory), nothing tells them: they hold both ends of
their own task pipe, so they would wait for work for ever, and multiprocessing's resource
tracker, which waits for every holder of its pipe to go, would stay with them.
``die_with_parent`` is each worker's initializer: on Linux the kernel kills the worker when
its parent dies (``PR_SET_PDEATHSIG``), and everywhere a thread checks that the parent is
still there. (The kernel's signal follows the parent *thread*: the pipeline starts its
workers from the syncing thread, which outlives them.) With the workers gone, the
resource tracker reads the end of its pipe and exits too. This module needs no Django
set-up (workers start from a bare interpreter).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
CHECK_EVERY = 0.5  # seconds between the watching thread's looks at the parent


def die_with_parent(parent: int) -> None:
    """Make this process end when process ``parent`` ends (call it first thing in a child)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watching thread below still ends this process
    # The parent may have died before the request above: then this process has a new one.
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="crmail-parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(CHECK_EVERY)
    os._exit(1)  # nothing to save: results go to the parent, which is gone


def default_workers() -> int:
    """Worker processes for CPU work: the cores the calling process leaves free."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def worker_pool(workers: int, what: str) -> ProcessPoolExecutor | None:
    """``workers`` processes, started from a bare interpreter (no Django) and dying with
    this process (``die_with_parent``: none outlives a killed sync); None, said in the
    log, when they cannot start here (``what`` is then done in this process)."""
    try:
        return ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
    except (OSError, ValueError, NotImplementedError):
        log.warning("No worker processes for %s; done in this process", what)
        return None


_shared: ProcessPoolExecutor | None = None
_shared_lock = threading.Lock()


def shared_pool() -> ProcessPoolExecutor | None:
    """This process's worker processes (``default_workers`` of them), started at first
    use and kept; None when they cannot start here."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = worker_pool(default_workers(), "the jobs' CPU work")
        return _shared


def forget_shared_pool(pool: ProcessPoolExecutor) -> None:
    """Let ``pool`` go when it broke (a worker died): the next use starts new workers.
    A pool started since is kept."""
    global _shared
    with _shared_lock:
        if _shared is pool:
            _shared = None
    pool.shutdown(wait=False, cancel_futures=True)
