"""An idle job worker on the SQLite queue starts a job another process queued at once,
not after its polling delay (``crmail.jobs.consumer.QueueWatch``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from crmail.jobs.consumer import CrmailConsumer, QueueWatch
from crmail.jobs.queue import build_huey

ROOT = Path(__file__).resolve().parents[3]

# Another process (a sync, a web request) queues a job a moment after it starts.
QUEUE_LATER = """
import sys, time
from crmail.jobs import queue
huey = queue.build_huey(sys.argv[1])
time.sleep(0.5)
huey.storage.enqueue(b"job")
"""


def test_an_idle_worker_wakes_when_another_process_queues_a_job(tmp_path):
    url = f"sqlite:///{tmp_path}/queue.sqlite3"
    huey = build_huey(url)
    consumer = CrmailConsumer(huey, workers=2, periodic=False)
    watch = consumer.watch
    assert watch is not None
    assert all(worker.watch is watch for worker, _ in consumer.worker_threads)
    other = subprocess.Popen(
        [sys.executable, "-c", QUEUE_LATER, url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        started = time.monotonic()
        watch.wait(60)  # an idle worker's wait between looks at the queue
        waited = time.monotonic() - started
    finally:
        consumer.stop_flag.set()
        assert other.wait(60) == 0
    assert huey.storage.queue_size() == 1
    assert waited < 30  # woken by the job, not by the end of its wait


def test_a_stopping_consumer_wakes_its_idle_workers(tmp_path):
    huey = build_huey(f"sqlite:///{tmp_path}/queue.sqlite3")
    stop = threading.Event()
    watch = QueueWatch(huey.storage.filename, stop)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    watch.wait(60)
    assert time.monotonic() - started < 30
