"""The records part of the top bar's search at scale, on SQLite or PostgreSQL.

    python bench/records_search_bench.py [--db sqlite|postgresql] [--samples 15]
                                         [--code DIR] [--keep | --reuse DIR]

The organisation of ``bigstore.populate`` without mail: 20 users, 100,000 contacts (one
email address each) in 5,000 accounts, 20,000 leads, 5,000 deals; contacts, leads,
accounts and deals private to their owners (the module default). On PostgreSQL a fresh
database ``crmail_records_bench`` on ``CRMAIL_BENCH_PG_SERVER`` (127.0.0.1:5432), dropped
at the end.

Measured, as ``/search/?q=`` runs it (``web.views.search``, one request's remembered
module defaults): ``list(modules.listing(user, mod, q, mod.default_sort)[:6])`` for the
four modules in turn, timed together with ``time.perf_counter``, for a representative
(sees their own records, about a tenth) and the administrator (sees every record), for
words of several kinds, ``--samples`` times each, the words in a shuffled order each
round. Printed: p50 and p95 per word and user, and over all of them.

``--code DIR`` imports crmail from another checkout (``--code /work/main``: the code
before a change, with its own migrations) to measure before and after on the same
machine; the store is built by that code.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import bigstore

WORDS: tuple[tuple[str, str], ...] = (
    ("common (a tenth of the people)", "mann"),
    ("rare (one record a module)", "77777"),
    ("absent", "qxz"),
    ("name prefix", "Schr"),
    ("email fragment", "customer42"),
    ("email domain", "prospect12"),
    ("two letters, common", "an"),
    ("two letters, absent", "zq"),
    ("one letter", "k"),
    ("non-ASCII", "müller"),
    ("non-ASCII, Greek", "Παπα"),
    ("two words", "anna müller"),
    ("account word", "gmbh"),
)


def measure(samples: int, rng: random.Random) -> dict[str, dict[str, list[float]]]:
    from crmail.people import access
    from crmail.people.models import User
    from crmail.web import modules

    users = {
        "representative": User.objects.get(email="user1@sales.example"),
        "administrator": User.objects.get(email="admin@example.org"),
    }
    times: dict[str, dict[str, list[float]]] = {u: {w: [] for _, w in WORDS} for u in users}
    found: dict[tuple[str, str], list[int]] = {}
    for round_ in range(samples + 1):  # the first round warms the caches, not counted
        order = [(u, w) for u in users for _, w in WORDS]
        rng.shuffle(order)
        for who, q in order:
            user = users[who]
            started = time.perf_counter()
            with access.remembering():
                rows = [
                    list(modules.listing(user, mod, q, mod.default_sort)[:6])
                    for mod in modules.MODULES.values()
                ]
            took = time.perf_counter() - started
            if round_:
                times[who][q].append(took)
            else:
                found[(who, q)] = [len(r) for r in rows]
    for (who, q), counts in found.items():
        print(f"  {who:15} {q!r:16} rows per module {counts}", file=sys.stderr)
    return times


def report(times: dict[str, dict[str, list[float]]]) -> None:
    kinds = {w: k for k, w in WORDS}
    print(f"{'user':15} {'query':16} {'kind':32} {'p50 ms':>8} {'p95 ms':>8}")
    everything: list[float] = []
    for who, per_word in times.items():
        mine: list[float] = []
        for q, samples in per_word.items():
            mine += samples
            print(
                f"{who:15} {q!r:16} {kinds[q]:32} {bigstore.pct(samples, 0.5):8.1f} "
                f"{bigstore.pct(samples, 0.95):8.1f}"
            )
        everything += mine
        print(
            f"{who:15} {'(all)':16} {'':32} {bigstore.pct(mine, 0.5):8.1f} "
            f"{bigstore.pct(mine, 0.95):8.1f}"
        )
    print(
        f"{'everyone':15} {'(all)':16} {'':32} {bigstore.pct(everything, 0.5):8.1f} "
        f"{bigstore.pct(everything, 0.95):8.1f}  (mean {statistics.mean(everything) * 1000:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--code", type=Path, help="import crmail from this checkout")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (and database)")
    parser.add_argument("--reuse", type=Path, help="measure a kept data dir again")
    args = parser.parse_args()
    if args.code:
        sys.path.insert(0, str(args.code.resolve()))
    bigstore.PG_DATABASE = "crmail_records_bench"
    if args.reuse:
        data = bigstore.reopen(args.reuse)
    else:
        data = bigstore.open_store("records-search-bench", args.db)
    try:
        import crmail

        print(f"crmail from {Path(crmail.__file__).parent}", file=sys.stderr)
        if not args.reuse:
            bigstore.populate(0, users_n=20, contacts_n=100_000)
            (data / "populated.json").write_text(json.dumps({"contacts": 100_000}))
        print(bigstore.machine())
        times = measure(args.samples, random.Random(7))
        report(times)
        print(bigstore.machine())
    finally:
        bigstore.close_store(data, args.keep or bool(args.reuse))


if __name__ == "__main__":
    main()
