"""Email reports at scale: every report of the Reports page on a 1,000,000-message store.

    python bench/reports_bench.py [--db sqlite|postgresql] [--messages 1000000]
                                  [--runs 3] [--out docs/benchmarks.md]
                                  [--keep | --reuse DIR]

The store is ``bench/bigstore.py``'s (the search benchmark's: ``--reuse`` takes a store
that ``search_bench.py --keep`` left, and the other way round). Three viewers: the
representative the search benchmark measures (own mailbox a tenth of the store, sees
about a tenth), their manager (sees the mail of their team on their records) and the CEO.

Timed with ``time.perf_counter`` around the Python call that the page and the API make
(``reports.queries.email_report``, ``response_times``, ``engagement``), ``--runs`` times
each (the median is reported, and the slowest), with no filter (all mail), with the
last 90 days, and over all mail with each kind of filter the page offers: a protocol as
source (IMAP), crmail's own source (sent from crmail), a sentiment (negative) and an
intent (question). The target: every report within 2 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import bigstore

from bench.benchenv import replaced

MARK = "reports-bench"
TARGET_S = 2.0
WINDOWS = (  # the filters measured (--filters), as ``measure`` writes them
    "all mail",
    "last 90 days",
    "source IMAP",
    "sent from crmail",
    "negative sentiment",
    "intent question",
)


def _timed(fn: Any, runs: int) -> tuple[float, float, Any]:
    seconds, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - t)
    return statistics.median(seconds), max(seconds), result


def measure(ids: dict[str, Any], runs: int, who: list[str], windows_: list[str]) -> list[str]:
    from django.utils import timezone

    from crmail.people.models import User
    from crmail.reports.engagement import engagement
    from crmail.reports.queries import GROUPS, Filters, email_report
    from crmail.reports.response_times import response_times

    users = ids["users"]
    viewers = [
        (name, pk)
        for name, pk in (
            ("representative", ids["viewer"]),
            ("manager", users[3]),
            ("CEO", users[0]),
        )
        if name in who
    ]
    today = timezone.localdate()
    windows = [
        (label, filters)
        for label, filters in (
            ("all mail", Filters()),
            ("last 90 days", Filters(after=today - timedelta(90))),
            ("source IMAP", Filters(source="imap")),
            ("sent from crmail", Filters(source="crmail")),
            ("negative sentiment", Filters(sentiment="negative")),
            ("intent question", Filters(intent="question")),
        )
        if label in windows_
    ]
    lines = [
        "| viewer | report | filter | counted | median ms | slowest ms |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    worst = 0.0
    for name_, pk in viewers:
        viewer = User.objects.select_related("role", "profile").get(pk=pk)
        for label, filters in windows:
            jobs: list[tuple[str, Any]] = [
                (f"by {name.lower()}", partial(email_report, viewer, group, filters))
                for group, name in GROUPS.items()
            ]
            jobs.append(("response times", partial(response_times, viewer, filters)))
            jobs.append(("open and click rates", partial(engagement, viewer, "month", filters)))
            for name, job in jobs:
                med, slow, result = _timed(job, runs)
                worst = max(worst, slow)
                counted = getattr(result, "total", None)
                lines.append(
                    f"| {name_} | {name} | {label} | "
                    f"{'' if counted is None else f'{counted:,}'} | {med * 1000:,.0f} | "
                    f"{slow * 1000:,.0f} |"
                )
                print(lines[-1], flush=True)
    verdict = "met" if worst <= TARGET_S else "not met"
    lines += ["", f"Slowest report: {worst * 1000:,.0f} ms (target {TARGET_S:.0f} s: {verdict})."]
    return lines


def classify() -> str:
    """Work out the visibility classes of every message changed since (decision 063):
    what the store's writes left to do, timed, before any report; then read them ahead
    as the serving process does."""
    from django.db import connection

    from crmail.sharing import classes
    from crmail.sharing.models import MessageClass, VisibilityClass

    pending = classes.pending()
    t = time.perf_counter()
    classes.classify()
    seconds = time.perf_counter() - t
    if connection.vendor == "postgresql":
        # the setup's dirty pages written now, not by the backends of the first reports
        # (this server's shared_buffers is 128 MB; a checkpoint otherwise falls in them)
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    t = time.perf_counter()
    classes.warm().join()  # as `crmail serve` does when it starts
    read = time.perf_counter() - t
    line = (
        f"Visibility classes worked out before the reports: {pending:,} changes read in "
        f"{seconds:,.0f} s; {MessageClass.objects.count():,} messages in "
        f"{VisibilityClass.objects.count():,} classes, read ahead in {read:.2f} s as "
        "`crmail serve` does when it starts."
    )
    print(line, flush=True)
    return line


def write_out(path: Path, text: str, db: str) -> None:
    """Put ``text`` between this database's markers in ``path`` (appended the first time)."""
    start, end = f"<!-- {MARK}:{db}:start -->", f"<!-- {MARK}:{db}:end -->"
    block = f"{start}\n{text}{end}"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    new = replaced(old, start, end, block)
    path.write_text(new if new is not None else old.rstrip("\n") + "\n\n" + block + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--viewers", default="representative,manager,CEO", help="comma-separated (all three)"
    )
    parser.add_argument("--filters", default=",".join(WINDOWS), help="comma-separated (all)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the store (for --reuse)")
    parser.add_argument("--reuse", type=Path, metavar="DIR", help="measure a kept store")
    args = parser.parse_args()
    if args.reuse:
        data = bigstore.reopen(args.reuse)
        args.db = bigstore.store_db(args.reuse)
    else:
        data = bigstore.open_store("reports-bench", args.db)
    started = bigstore.machine()
    print(started, flush=True)
    try:
        if args.reuse:
            ids = json.loads((data / "ids.json").read_text())
            from django.core.management import call_command

            call_command("migrate", verbosity=0)  # a store kept by an earlier release
        else:
            ids = bigstore.populate(args.messages)
            (data / "ids.json").write_text(json.dumps(ids))
        classified = classify()
        lines = measure(ids, args.runs, args.viewers.split(","), args.filters.split(","))
        head = [
            f"### {args.db} ({time.strftime('%Y-%m-%d %H:%M %Z')})",
            "",
            f"`python bench/reports_bench.py --db {args.db} --messages {ids['messages']:,} "
            f"--runs {args.runs} --viewers '{args.viewers}' --filters '{args.filters}'`. "
            f"Machine at the start: {started}. At the end: "
            f"{bigstore.machine().rsplit('; ', 1)[1]}.",
            "",
        ]
        text = "\n".join([*head, classified, "", *lines]) + "\n"
        if args.out:
            write_out(args.out, text, args.db)
            print(f"written to {args.out}")
    finally:
        bigstore.close_store(data, args.keep or bool(args.reuse))


if __name__ == "__main__":
    main()
