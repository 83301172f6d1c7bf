"""The sales inbox at scale: first pages, counts and folders on a 1,000,000-message store.

    python bench/inbox_bench.py [--db sqlite|postgresql] [--messages N] [--inbox N]
                                [--samples N] [--out docs/benchmarks.md] [--keep]

Populates a fresh crmail (its own data dir; on PostgreSQL its own database on
127.0.0.1:5432, dropped after unless ``--keep``) in bulk: ten users, each with a mailbox
whose Inbox holds a share of the messages, the measured user's ``--inbox`` of them, in
threads of three; 4,000 contacts (half the user's), 1,000 leads and 600 deals (480 open) of
the user's; each thread linked to one record or none (10 % an open deal's contact, 30 %
another of the user's contacts, 10 % a lead, 10 % a colleague's contact the user may not
view, 40 % nothing). Then rebuilds the inbox's conversations (timed) and times, ``--samples``
times each, what the inbox page asks for: the first page of every stream, unread ones,
the folder list, the stream tabs' counts, and the whole page (``GET /inbox/``) as a browser
gets it. With ``--out``, the results replace what lies between
``<!-- inbox-bench:<db>:start -->`` and ``<!-- inbox-bench:<db>:end -->`` in that file.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchenv import cpu, replaced, setup_crmail

PG = os.environ.get("CRMAIL_BENCH_PG_URL", "postgresql://127.0.0.1:5432")
CHUNK = 20_000


def populate(total: int, inbox_n: int, rnd: random.Random) -> Any:
    """The store; returns the measured user."""
    from django.db import connection, transaction
    from django.utils import timezone

    from crmail.config.bulk import insert_rows
    from crmail.crm.models import Contact, Deal, Lead, Pipeline, Stage
    from crmail.linking.models import Link
    from crmail.mail.models import Message, Thread
    from crmail.mailboxes.models import Folder, Location, Mailbox
    from crmail.people.models import Profile, Role, User

    std = Profile.objects.get(name="Standard")
    rep_role = Role.objects.get(name="Sales Representative")
    rep = User.objects.create_user(
        "rep@x.test", "pw-bench-1", name="Rep", role=rep_role, profile=std
    )
    others = [
        User.objects.create_user(
            f"u{i}@x.test", "pw-bench-1", name=f"U{i}", role=rep_role, profile=std
        )
        for i in range(9)
    ]
    pipeline = Pipeline.objects.get(is_default=True)
    open_stage = Stage.objects.filter(pipeline=pipeline, kind="open").first()
    won = Stage.objects.filter(pipeline=pipeline, kind="won").first()
    contacts = Contact.objects.bulk_create(
        [Contact(owner=rep, last_name=f"C{i}") for i in range(2000)]
        + [Contact(owner=others[i % 9], last_name=f"X{i}") for i in range(2000)]
    )
    mine = [c.pk for c in contacts[:2000]]
    theirs = [c.pk for c in contacts[2000:]]
    leads = [
        x.pk
        for x in Lead.objects.bulk_create([Lead(owner=rep, last_name=f"L{i}") for i in range(1000)])
    ]
    Deal.objects.bulk_create(
        [
            Deal(
                owner=rep,
                name=f"D{i}",
                pipeline=pipeline,
                stage=open_stage if i % 5 else won,
                amount=Decimal(rnd.randint(1, 500) * 100),
                closing_date=(datetime(2027, 1, 1) + timedelta(days=rnd.randint(0, 300))).date(),
                contact_id=mine[i],
            )
            for i in range(600)
        ]
    )
    deal_contacts = mine[:600]
    boxes = []
    for user in [rep, *others]:
        box = Mailbox.objects.create(owner=user, email=user.email)
        inbox = Folder.objects.create(mailbox=box, remote_id="INBOX", name="INBOX", role="inbox")
        Folder.objects.create(mailbox=box, remote_id="Sent", name="Sent", role="sent")
        boxes.append((box, inbox))

    def prep(field: Any, value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    when_f = Message._meta.get_field("date")
    now = timezone.now()
    start = datetime(2021, 1, 1, tzinfo=UTC)
    span = 5 * 365 * 24 * 3600
    next_id = (Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    for index, (box, folder) in enumerate(boxes):
        n = inbox_n if index == 0 else (total - inbox_n) // 9
        done = 0
        while done < n:
            size = min(CHUNK, n - done)
            with transaction.atomic():
                threads = Thread.objects.bulk_create(
                    [Thread(subject="t") for _ in range(size // 3 + 1)]
                )
                target: dict[int, tuple[str, int] | None] = {}
                for t in threads:
                    r = rnd.random()
                    target[t.pk] = (
                        ("contacts", rnd.choice(deal_contacts))
                        if r < 0.10
                        else ("contacts", rnd.choice(mine))
                        if r < 0.40
                        else ("leads", rnd.choice(leads))
                        if r < 0.50
                        else ("contacts", rnd.choice(theirs))
                        if r < 0.60
                        else None
                    )
                base = {t.pk: rnd.randint(0, span) for t in threads}
                messages, locations, links = [], [], []
                for i in range(size):
                    pk, t = next_id, threads[i // 3].pk
                    next_id += 1
                    when = prep(when_f, start + timedelta(seconds=base[t] + (i % 3) * 3600))
                    messages.append(
                        (pk, f"{pk:064x}", 100, prep(when_f, now), "parsed", f"Subject {pk}",
                         when, "a@b.test", "A", f"snippet {pk}", t, "", "", "", "", "", False,
                         False, False, "")
                    )  # fmt: skip
                    locations.append(
                        (box.pk, folder.pk, pk, str(pk), pk, rnd.random() > 0.2,
                         rnd.random() < 0.05, False, False, False, "", prep(when_f, now), t, when)
                    )  # fmt: skip
                    if target[t] is not None:
                        module, record_id = target[t]  # type: ignore[misc]
                        links.append(
                            (pk, module, record_id, "address", "", when, prep(when_f, now))
                        )
                insert_rows(
                    Message,
                    ("id", "sha256", "size", "first_seen_at", "parse_state", "subject", "date",
                     "from_address", "from_name", "snippet", "thread", "parse_problems",
                     "message_id", "in_reply_to", "references", "body_text", "has_html",
                     "has_attachments", "automated", "list_id"),
                    messages,
                )  # fmt: skip
                insert_rows(
                    Location,
                    ("mailbox", "folder", "message", "remote_id", "uid", "seen", "flagged",
                     "answered", "deleted", "draft", "keywords", "created_at", "thread", "date"),
                    locations,
                )  # fmt: skip
                insert_rows(
                    Link,
                    ("message", "module", "record_id", "reason", "address", "date", "created_at"),
                    links,
                )
            done += size
        print(f"  mailbox {index + 1}/10: {n:,} messages", flush=True)
    if connection.vendor == "postgresql":
        from django.core.management.color import no_style

        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [Message]):
                cursor.execute(sql)
    return User.objects.get(pk=rep.pk)


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def timed(fn: Callable[[], Any], samples: int) -> tuple[float, float, Any]:
    """(p50, p95) in ms over ``samples`` runs after one warm-up, and the last result."""
    result = fn()
    out = []
    for _ in range(samples):
        t = time.perf_counter()
        result = fn()
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return statistics.median(out), out[min(len(out) - 1, int(len(out) * 0.95))], result


def machine(db: str) -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        number = connection.cursor().connection.info.server_version  # e.g. 150020
        version = f"PostgreSQL {number // 10000}.{number % 10000}"
    else:
        version = f"SQLite {sqlite3.sqlite_version}"
    python = f"Python {platform.python_version()}"
    return f"{cpu()}; {platform.platform()}; {python}; {version}"


def run(args: argparse.Namespace) -> list[str]:
    from django.test import Client

    from crmail.mail.models import Message
    from crmail.mailboxes import conversations, inbox
    from crmail.mailboxes.models import Conversation, Location
    from crmail.people.models import User

    rnd = random.Random(7)
    t0 = time.perf_counter()
    if args.reuse is None:
        rep = populate(args.messages, args.inbox, rnd)
    else:
        rep = User.objects.get(email="rep@x.test")
    populated = time.perf_counter() - t0
    t0 = time.perf_counter()
    conversations.rebuild()
    rebuilt = time.perf_counter() - t0
    analyze()
    in_inbox = Location.objects.filter(folder__mailbox__owner=rep, folder__role="inbox").count()
    print(
        f"populated {Message.objects.count():,} messages in {populated:.0f} s "
        f"({in_inbox:,} in the user's Inbox); conversations rebuilt in {rebuilt:.1f} s "
        f"({Conversation.objects.count():,})",
        flush=True,
    )
    load_start = os.getloadavg()
    rows: list[tuple[str, float, float, str]] = []

    def measure(label: str, fn: Callable[[], Any], note: Callable[[Any], str]) -> None:
        p50, p95, result = timed(fn, args.samples)
        rows.append((label, p50, p95, note(result)))
        print(
            f"{args.db:10} {label:44} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  {rows[-1][3]}",
            flush=True,
        )

    def page_note(p: Any) -> str:
        return f"{p.count:,} conversations, {len(p.items)} shown"

    measure("page(user)", lambda: inbox.page(rep), page_note)
    for stream in inbox.STREAMS:
        measure(
            f'page(user, stream="{stream}")', lambda s=stream: inbox.page(rep, stream=s), page_note
        )
    measure("page(user, unread=True)", lambda: inbox.page(rep, unread=True), page_note)
    measure(
        'page(user, stream="deals", unread=True)',
        lambda: inbox.page(rep, stream="deals", unread=True),
        page_note,
    )
    measure("page(user, offset=5000)", lambda: inbox.page(rep, offset=5000), page_note)
    measure(
        "stream_counts(user)",
        lambda: inbox.stream_counts(rep),
        lambda c: ", ".join(f"{s.stream} {s.total:,}" for s in c),
    )
    measure("folders(user)", lambda: inbox.folders(rep), lambda c: f"{len(c)} folders")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(rep)
    for stream in ("", "deals", "others"):
        url = f"/inbox/?stream={stream}" if stream else "/inbox/"

        def get(url: str = url) -> int:
            response = client.get(url)
            assert response.status_code == 200, response.status_code
            return len(response.content)

        measure(f"GET {url} (whole page)", get, lambda n: f"{n:,} bytes")
    load_end = os.getloadavg()
    lines = [
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: "
        f"`python bench/inbox_bench.py --db {args.db}` "
        f"({args.samples} samples each, after one warm-up). Machine: {machine(args.db)}. "
        f"Load average {' '.join(f'{x:.2f}' for x in load_start)} at the start of the timings, "
        f"{' '.join(f'{x:.2f}' for x in load_end)} at the end (other work shared the 2 cores).",
        "",
        f"Store: {args.messages:,} messages, {in_inbox:,} in the user's Inbox (about "
        f"{in_inbox // 3:,} threads); populated in {populated:.0f} s; "
        f"`crmail inbox rebuild` of all {Conversation.objects.count():,} conversations: "
        f"{rebuilt:.1f} s.",
        "",
        "| what | p50 | p95 | result |",
        "|---|---:|---:|---|",
        *(
            f"| `{label}` | {p50:.1f} ms | {p95:.1f} ms | {note} |"
            for label, p50, p95, note in rows
        ),
    ]
    return lines


def reopen(data: Path, database_url: str | None) -> Path:
    """Django set up on a data dir (and database) an earlier ``--keep`` run populated."""
    for key in [k for k in os.environ if k.startswith("CRMAIL_")]:
        del os.environ[key]
    os.environ.update(
        CRMAIL_DATA_DIR=str(data / "data"), CRMAIL_LOG_LEVEL="WARNING", CRMAIL_QUEUE_URL="memory://"
    )
    if database_url is not None:
        os.environ["CRMAIL_DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crmail.config.settings")
    import django

    django.setup()
    return data


def write(path: Path, db: str, lines: list[str]) -> None:
    start, end = f"<!-- inbox-bench:{db}:start -->", f"<!-- inbox-bench:{db}:end -->"
    text = path.read_text()
    block = "\n".join([start, *lines, end])
    new = replaced(text, start, end, block)
    path.write_text(new if new is not None else text.rstrip("\n") + "\n\n" + block + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--inbox", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--out", type=Path, help="write the results into this Markdown file")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and database")
    parser.add_argument(
        "--reuse",
        metavar="DIR[:DATABASE]",
        help="time a store a --keep run populated (its data dir, and database on PostgreSQL)",
    )
    args = parser.parse_args()
    name = f"inbox_bench_{os.getpid()}"
    extra = {}
    if args.reuse is not None:
        folder, _, name = args.reuse.partition(":")
        data = reopen(Path(folder), f"{PG}/{name}" if args.db == "postgresql" else None)
    else:
        if args.db == "postgresql":
            subprocess.run(["createdb", "-h", "127.0.0.1", name], check=True)
            extra["CRMAIL_DATABASE_URL"] = f"{PG}/{name}"
        data = setup_crmail("inbox-bench", extra)
    try:
        lines = run(args)
        if args.out is not None:
            write(args.out, args.db, lines)
    finally:
        if args.keep:
            print(f"kept {data}" + (f" and database {name}" if args.db == "postgresql" else ""))
        else:
            from django.db import connections

            connections.close_all()
            if args.db == "postgresql":
                subprocess.run(["dropdb", "-h", "127.0.0.1", name], check=False)
            import shutil

            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
