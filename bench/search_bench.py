"""Search at scale: crmail's search beside a naive LIKE query, on SQLite or PostgreSQL.

    python bench/search_bench.py [--db sqlite|postgresql] [--messages 1000000]
                                 [--samples 200] [--out docs/benchmarks.md]
                                 [--keep | --reuse DIR]

Populates a store with ``bench/bigstore.py`` (its docstring describes the organisation
and the text), builds the search index with crmail's own ``reindex`` (timed), and counts
what the measured user may see (``visible_messages``). PostgreSQL: a fresh database
``crmail_bench`` on ``CRMAIL_BENCH_PG_SERVER`` (default ``postgresql://127.0.0.1:5432``,
trust auth), dropped at the end unless ``--keep``. ``--reuse DIR`` measures a store kept
by ``--keep`` again, without populating.

Timed sections (``SECTIONS``; each takes the ``Bench`` and returns report lines, so
another one, e.g. the inbox's first page, is one more function):

1. ``search``: ``crmail.search.queries.search_messages`` as the page and the API call it
   (first page of 20 threads, its count, subjects and snippets highlighted), for a mix of
   query kinds drawn per sample (``KINDS``), and, for the same queries in the same loop,
   the naive equivalent: ``subject LIKE %w% OR body_text LIKE %w%`` for each word, the
   same filters, on ``visible_messages``, newest first, first page and its count. p50,
   p95 and max per kind and overall.
2. ``page``: the top bar's ``/search/`` page (records and mail together) and
   ``GET /api/v1/search`` through Django's test client (signed in; the API with a token),
   a few samples each: server time, rendering included (the process's first request,
   which loads templates and lazily imported views, timed apart).

Times are ``time.perf_counter`` around the Python call, in this process; the machine
line says how busy the machine was.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import bigstore

from bench.benchenv import replaced

MARK_START, MARK_END = "<!-- search-bench:start -->", "<!-- search-bench:end -->"
PAGE = 20


@dataclass
class Bench:
    args: argparse.Namespace
    ids: dict[str, Any]
    viewer: Any
    rng: random.Random
    notes: list[str] = field(default_factory=list)
    own_counts: dict[str, int] = field(default_factory=dict)


# --- the queries --------------------------------------------------------------------------


@dataclass
class Case:
    kind: str
    text: str  # what the user types
    filters: Any  # crmail.search.queries.Filters
    like_words: list[str]  # what the naive query looks for in subject or body
    like_from: str = ""


def _own_message(b: Bench, *conditions: str) -> int:
    """A random message of the viewer's own mailbox (meeting ``conditions``, SQL)."""
    from django.db import connection

    where = " AND ".join(("b.owner_id = %s", *conditions))
    key = where
    if key not in b.own_counts:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM mailboxes_location l JOIN mailboxes_mailbox b"
                f" ON b.id = l.mailbox_id JOIN mail_message m ON m.id = l.message_id WHERE {where}",
                [b.viewer.pk],
            )
            b.own_counts[key] = int(cursor.fetchone()[0])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.message_id FROM mailboxes_location l JOIN mailboxes_mailbox b"
            f" ON b.id = l.mailbox_id JOIN mail_message m ON m.id = l.message_id WHERE {where}"
            " ORDER BY l.id LIMIT 1 OFFSET %s",
            [b.viewer.pk, b.rng.randrange(b.own_counts[key])],
        )
        return int(cursor.fetchone()[0])


def _phrase(b: Bench) -> str:
    from crmail.mail.models import Message

    body = Message.objects.values_list("body_text", flat=True).get(pk=_own_message(b))
    # Two words next to each other in a sentence (no punctuation between them).
    tokens = body.split("\n\n", 1)[-1].split()
    pairs = [(x, y) for x, y in itertools.pairwise(tokens) if x.isalpha() and y.isalpha()]
    return " ".join(b.rng.choice(pairs)).lower()


def _file_word(b: Bench) -> str:
    from crmail.mail.models import Attachment
    from crmail.search.words import words

    mid = _own_message(b, "m.has_attachments")
    name = Attachment.objects.filter(message_id=mid).values_list("filename", flat=True).first()
    found = [w for w in words(name or "") if len(w) > 3 and not w.isdigit() and w != "docx"]
    return found[0] if found else "pdf"


def make_case(b: Bench, kind: str) -> Case:
    from crmail.crm.models import EmailAddress
    from crmail.search.queries import Filters

    vocab = b.ids["vocabulary"]
    common = vocab[b.rng.randrange(40, 150)]
    if kind == "common word":
        return Case(kind, common, Filters(), [common])
    if kind == "rare word":
        w = vocab[b.rng.randrange(5000, 25000)]
        return Case(kind, w, Filters(), [w])
    if kind == "non-ASCII word":
        w = b.rng.choice(bigstore.NON_ASCII)
        return Case(kind, w, Filters(), [w])
    if kind == "quoted phrase":
        p = _phrase(b)
        return Case(kind, f'"{p}"', Filters(), [p])
    if kind == "from: address":
        contact = b.rng.choice(b.ids["viewer_contacts"])
        addr = EmailAddress.objects.filter(contact_id=contact).values_list("address", flat=True)[0]
        return Case(kind, f"from:{addr}", Filters(), [], like_from=addr)
    if kind == "has:attachment + word":
        return Case(kind, f"has:attachment {common}", Filters(), [common])
    if kind == "word + after/before":
        start = date(2021, 1, 1) + timedelta(days=b.rng.randrange(4 * 365))
        end = start + timedelta(days=b.rng.choice((30, 90, 365)))
        return Case(kind, f"{common} after:{start} before:{end}", Filters(), [common])
    if kind == "attachment name word":
        w = _file_word(b)
        return Case(kind, w, Filters(), [w])
    if kind == "linked record + word":
        contact = b.rng.choice(b.ids["viewer_contacts"][:500])  # busy customers first
        return Case(kind, common, Filters(record=("contacts", contact)), [common])
    if kind == "is:unread":
        return Case(kind, "is:unread", Filters(), [])
    raise ValueError(kind)


KINDS = (
    "common word",
    "rare word",
    "non-ASCII word",
    "quoted phrase",
    "from: address",
    "has:attachment + word",
    "word + after/before",
    "attachment name word",
    "linked record + word",
    "is:unread",
)


def naive(viewer: Any, case: Case) -> tuple[list[Any], int]:
    """The LIKE equivalent of ``case``: the same candidates (visibility and filters),
    each word in the subject or the body, newest first; first page and its count."""
    from django.db.models import Q

    from crmail.search.queries import candidates, combined
    from crmail.search.query import parse

    query = combined(parse(case.text), case.filters)
    qs = candidates(viewer, query, case.filters)
    for w in case.like_words:
        qs = qs.filter(Q(subject__icontains=w) | Q(body_text__icontains=w))
    if case.like_from:
        qs = qs.filter(from_address__icontains=case.like_from)
    page = list(qs.order_by("-date", "-pk")[:PAGE])
    return page, qs.count()


# --- timed sections ---------------------------------------------------------------------------


def _row(label: str, values: list[float]) -> str:
    if not values:
        return f"| {label} | n/a | n/a | n/a |"
    return (
        f"| {label} | {bigstore.pct(values, 0.5):.1f} | {bigstore.pct(values, 0.95):.1f} "
        f"| {max(values) * 1000:.1f} |"
    )


def section_search(b: Bench) -> list[str]:
    from crmail.people.access import remembering
    from crmail.search.queries import search_messages
    from crmail.search.query import parse

    ours: dict[str, list[float]] = defaultdict(list)
    like: dict[str, list[float]] = defaultdict(list)
    found: dict[str, list[int]] = defaultdict(list)
    found_like: dict[str, list[int]] = defaultdict(list)
    kinds = list(KINDS) if b.args.kinds is None else b.args.kinds.split(",")
    like_every = max(1, b.args.like_every)
    for s in range(b.args.samples):
        kind = kinds[s % len(kinds)]
        case = make_case(b, kind)
        t = time.perf_counter()
        with remembering():  # as in a request: the organisation's defaults read once
            results = search_messages(b.viewer, parse(case.text), case.filters, limit=PAGE)
            for hit in results.hits:
                str(hit.snippet_html)
        ours[kind].append(time.perf_counter() - t)
        found[kind].append(results.count)
        if s // len(kinds) % like_every == 0:
            t = time.perf_counter()
            _, n = naive(b.viewer, case)
            like[kind].append(time.perf_counter() - t)
            found_like[kind].append(n)
        print(
            f"  {s + 1}/{b.args.samples} {kind:<22} {ours[kind][-1] * 1000:8.1f} ms"
            f" {results.count:>7} threads"
            + (f"   LIKE {like[kind][-1] * 1000:8.1f} ms" if like[kind] else "")
            + f"   {case.text!r}"
            + (f" on {case.filters.record}" if case.filters.record else ""),
            file=sys.stderr,
            flush=True,
        )
    lines = [
        f"`search_messages` (first page of {PAGE} threads with the count and snippets) and the "
        "naive LIKE query (first page of messages and the count) for the same queries, "
        f"{b.args.samples} samples"
        + (f" (LIKE on every {like_every}th round of kinds)" if like_every > 1 else "")
        + ", ms:",
        "",
        "| query kind | crmail p50 | crmail p95 | crmail max | LIKE p50 | LIKE p95 | LIKE max "
        "| threads found (median) | LIKE messages (median) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in kinds:
        a = _row(kind, ours[kind]).split(" | ")
        c = _row(kind, like[kind]).split(" | ")
        med = statistics.median(found[kind]) if found[kind] else 0
        med_like = statistics.median(found_like[kind]) if found_like[kind] else 0
        lines.append(
            " | ".join(a[:4]).rstrip(" |")
            + " | "
            + " | ".join(c[1:4]).rstrip(" |")
            + f" | {med:,.0f} | {med_like:,.0f} |"
        )
    every = [v for vs in ours.values() for v in vs]
    every_like = [v for vs in like.values() for v in vs]
    a = _row("**all**", every).split(" | ")
    c = _row("", every_like).split(" | ")
    lines.append(
        " | ".join(a[:4]).rstrip(" |") + " | " + " | ".join(c[1:4]).rstrip(" |") + " | | |"
    )
    p95, p95_like = bigstore.pct(every, 0.95), bigstore.pct(every_like, 0.95)
    b.notes.append(f"search p95 {p95:.0f} ms (LIKE {p95_like:.0f} ms)")
    return lines


def section_page(b: Bench) -> list[str]:
    from django.conf import settings
    from django.test import Client

    from crmail.people.actions import create_token

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]

    _, token = create_token(b.viewer, name="search bench")
    client = Client()
    client.force_login(b.viewer)
    n = max(5, b.args.samples // 20)
    # The process's first request loads templates, the URL conf and what views import
    # lazily: a server pays it once after starting. Timed and reported apart.
    t = time.perf_counter()
    assert client.get("/search/", {"q": "start"}).status_code == 200
    first_page = time.perf_counter() - t
    t = time.perf_counter()
    first_api = client.get(
        "/api/v1/search", {"q": "start"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert first_api.status_code == 200, first_api.status_code
    first_api_s = time.perf_counter() - t
    page, api = [], []
    for s in range(n):
        case = make_case(b, ("common word", "rare word", "non-ASCII word", "from: address")[s % 4])
        t = time.perf_counter()
        r = client.get("/search/", {"q": case.text})
        page.append(time.perf_counter() - t)
        assert r.status_code == 200, r.status_code
        t = time.perf_counter()
        r = client.get(
            "/api/v1/search", {"q": case.text}, headers={"Authorization": f"Bearer {token}"}
        )
        api.append(time.perf_counter() - t)
        assert r.status_code == 200, (r.status_code, r.content[:200])
    return [
        f"Through Django's test client ({n} samples: common, rare, non-ASCII word, from:), "
        "server time with rendering, ms:",
        "",
        "| request | p50 | p95 | max |",
        "| --- | ---: | ---: | ---: |",
        _row("`/search/?q=…` (records and mail, signed in)", page),
        _row("`GET /api/v1/search?q=…` (token)", api),
        "",
        f"The first request of the process, before these (not in the figures above): the page "
        f"{first_page * 1000:.0f} ms, the API {first_api_s * 1000:.0f} ms.",
    ]


SECTIONS: list[tuple[str, Callable[[Bench], list[str]]]] = [
    ("search", section_search),
    ("page", section_page),
]


# --- the run ----------------------------------------------------------------------------------


def write_out(path: Path, text: str, db: str) -> None:
    """Put ``text`` between this database's markers inside the search-bench section."""
    start, end = f"<!-- search-bench:{db}:start -->", f"<!-- search-bench:{db}:end -->"
    block = f"{start}\n{text}{end}\n"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    new = replaced(old, start, end, block.rstrip("\n"))
    if new is None and MARK_START in old and MARK_END in old:
        head, rest = old.split(MARK_END, 1)
        new = head + block + MARK_END + rest
    elif new is None:
        new = old.rstrip("\n") + f"\n\n{MARK_START}\n{block}{MARK_END}\n"
    path.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--kinds", default=None, help="comma-separated query kinds (all)")
    parser.add_argument(
        "--like-every", type=int, default=1, help="run the LIKE query every Nth round only"
    )
    parser.add_argument("--sections", default=",".join(name for name, _ in SECTIONS))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the store (for --reuse)")
    parser.add_argument("--reuse", type=Path, metavar="DIR", help="measure a kept store")
    parser.add_argument(
        "--populate-s",
        type=float,
        default=0.0,
        help="with --reuse of a store stopped while indexing: how long populating took",
    )
    args = parser.parse_args()
    if args.reuse:
        data = bigstore.reopen(args.reuse)
        args.db = bigstore.store_db(args.reuse)
    else:
        data = bigstore.open_store("search-bench", args.db)
    started_line = bigstore.machine()
    print(started_line, flush=True)
    try:
        if args.reuse and (data / "ids.json").exists():
            ids = json.loads((data / "ids.json").read_text())
        elif args.reuse:  # a populate stopped before it wrote its ids: read them back
            ids = bigstore.recover_ids(args.messages, args.populate_s)
        else:
            ids = bigstore.populate(args.messages)
        if "index_s" not in ids:
            seconds, done = bigstore.build_index(resume=bool(args.reuse))
            ids["index_s"] = seconds * ids["messages"] / max(1, done)
            ids["index_note"] = (
                "" if done == ids["messages"] else f" (timed on the last {done:,}, scaled)"
            )
            (data / "ids.json").write_text(json.dumps(ids))
        from crmail.people.models import User
        from crmail.search.index import indexed_count
        from crmail.sharing.visibility import visible_messages

        viewer = User.objects.select_related("role", "profile").get(pk=ids["viewer"])
        if "visible" not in ids:
            t = time.perf_counter()
            ids["visible"] = visible_messages(viewer).count()
            ids["visible_count_s"] = time.perf_counter() - t
            (data / "ids.json").write_text(json.dumps(ids))
        print(
            f"the viewer may see {ids['visible']:,} of {ids['messages']:,} messages "
            f"({ids['visible'] / ids['messages']:.1%}; counted in {ids['visible_count_s']:.1f} s); "
            f"{indexed_count():,} documents indexed",
            flush=True,
        )
        b = Bench(args, ids, viewer, random.Random(17))
        chosen = args.sections.split(",")
        parts = []
        for name, fn in SECTIONS:
            if name in chosen:
                parts.append("\n".join(fn(b)))
                print(parts[-1], flush=True)
        cmd = f"python bench/search_bench.py --db {args.db} --messages {ids['messages']} " + (
            f"--samples {args.samples}"
        )
        head = [
            f"### {args.db} ({time.strftime('%Y-%m-%d %H:%M %Z')})",
            "",
            f"`{cmd}`. Machine at the start: {started_line}. At the end: "
            f"{bigstore.machine().rsplit('; ', 1)[1]}.",
            "",
            f"Store: {ids['messages']:,} messages populated in {ids['populate_s']:.0f} s; "
            f"search index built by `reindex` in {ids['index_s']:.0f} s"
            f"{ids.get('index_note', '')} "
            f"({ids['messages'] / ids['index_s']:,.0f} messages/s); the measured user may see "
            f"{ids['visible']:,} messages ({ids['visible'] / ids['messages']:.1%}; "
            f"`visible_messages(viewer).count()` took {ids['visible_count_s']:.1f} s).",
            "",
        ]
        text = "\n".join(head) + "\n\n".join(parts) + "\n\n"
        print("; ".join(b.notes))
        if args.out:
            write_out(args.out, text, args.db)
            print(f"written to {args.out}")
    finally:
        bigstore.close_store(data, args.keep or bool(args.reuse))


if __name__ == "__main__":
    main()
