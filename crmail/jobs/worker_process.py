"""Keeping a parsing worker process from outliving the process that started it.

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
import os
import signal
import sys
import threading
import time

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
