"""A Gmail mailbox through the Gmail API, against the local stand-in with added latency.

    python bench/gmail_bench.py [--messages 10000] [--latency-ms 20] [--live 100000]
                                [--live-queries 20] [--no-imap] [--out FILE]

Two measurements, each part in a process of its own with a fresh crmail data dir:

- **keep-a-copy first sync**: ``--messages`` messages (bench/corpus.py's mixed corpus) in
  the stand-in's Inbox, every HTTP request delayed by ``--latency-ms``; crmail's first sync
  (``open_driver`` + ``sync_mailbox``) timed. Beside it, the same messages in a throwaway
  Dovecot (tests/harness, needs root) synced over IMAP through a proxy adding the same
  round-trip time (``--no-imap`` leaves it out).
- **live query's first page**: ``--live`` small messages between the rep and 2,000
  correspondents in the stand-in (same latency); a record's Emails list asks
  ``GmailDriver.query`` for its first page (50) for ``--live-queries`` contacts: wall time
  per query, median and 95th percentile (the target: under 500 ms).

Prints JSON per part and a Markdown table; ``--out`` writes the table to FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TOKEN = "bench-access-token"
ME = "rep@gmail.test"


def _gmail_mailbox(api_url: str) -> Any:
    from django.utils import timezone

    from tests import factories as f

    return f.api_mailbox(
        "gmail",
        ME,
        TOKEN,
        owner=f.user("rep@crmail.test"),
        access_token_expires_at=timezone.now() + timedelta(hours=12),
    )


def part_gmail_sync(args: argparse.Namespace) -> dict[str, Any]:
    from bench.benchenv import setup_crmail

    data = setup_crmail("gmail-sync")
    try:
        from bench.corpus import mixed_messages
        from crmail.mailboxes.connect import open_driver
        from crmail.mailboxes.sync import sync_mailbox
        from crmail.mailboxes.tests.standins.gmail import GmailStandIn

        messages = mixed_messages(args.messages)
        with GmailStandIn(ME) as gmail:
            gmail.token(TOKEN)
            gmail.add_messages((raw, ("INBOX", "UNREAD"), None) for raw in messages)
            from django.conf import settings

            settings.CRMAIL_GMAIL_API_URL = gmail.url
            mailbox = _gmail_mailbox(gmail.url)
            gmail.latency = args.latency_ms / 1000
            start = time.perf_counter()
            driver = open_driver(mailbox)
            try:
                report = sync_mailbox(mailbox, driver)
            finally:
                driver.close()
            wall = time.perf_counter() - start
            requests = sum(1 for r in gmail.requests if not r.in_batch)
        return {
            "part": "gmail-sync",
            "messages": args.messages,
            "fetched": report.fetched,
            "bytes": report.bytes,
            "seconds": wall,
            "http_requests": requests,
        }
    finally:
        shutil.rmtree(data, ignore_errors=True)


def part_imap_sync(args: argparse.Namespace) -> dict[str, Any]:
    from bench.benchenv import setup_crmail

    data = setup_crmail("gmail-imap")
    try:
        from bench.corpus import fill, mixed_messages
        from crmail.mailboxes.connect import open_driver
        from crmail.mailboxes.drivers.tests.bench_imap import delay_proxy
        from crmail.mailboxes.sync import sync_mailbox
        from tests import factories as f
        from tests.harness.dovecot import DovecotServer

        messages = mixed_messages(args.messages)
        with DovecotServer(users={}) as server:
            login, password = server.new_user("bench")
            fill(server, login, messages)
            with delay_proxy(server.imap_port, args.latency_ms) as port:
                from crmail.mailboxes.models import Mailbox

                mailbox = Mailbox.objects.create(
                    owner=f.user("rep@crmail.test"),
                    email=f"{login}@crmail.test",
                    host="127.0.0.1",
                    port=port,
                    security="none",
                    login=login,
                    secret=password,
                )
                start = time.perf_counter()
                driver = open_driver(mailbox)
                try:
                    report = sync_mailbox(mailbox, driver)
                finally:
                    driver.close()
                wall = time.perf_counter() - start
        return {
            "part": "imap-sync",
            "messages": args.messages,
            "fetched": report.fetched,
            "bytes": report.bytes,
            "seconds": wall,
        }
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _small(n: int, contact: str, incoming: bool) -> bytes:
    sender, to = (contact, ME) if incoming else (ME, contact)
    return (
        f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: Note {n}\r\nMessage-ID: <live{n}@bench>\r\n"
        f"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\nLine {n}\r\n"
    ).encode()


def part_live(args: argparse.Namespace) -> dict[str, Any]:
    from bench.benchenv import setup_crmail

    data = setup_crmail("gmail-live")
    try:
        from crmail.mailboxes.drivers.gmail import GmailConfig, GmailDriver
        from crmail.mailboxes.tests.standins.gmail import GmailStandIn

        contacts = [f"contact{i}@customer{i % 97}.example" for i in range(2000)]
        base = time.time() - args.live * 60
        with GmailStandIn(ME) as gmail:
            gmail.token(TOKEN)
            gmail.add_messages(
                (
                    _small(n, contacts[n % len(contacts)], n % 3 != 0),
                    ("INBOX",) if n % 3 else ("SENT",),
                    base + n * 60,
                )
                for n in range(args.live)
            )
            gmail.latency = args.latency_ms / 1000
            driver = GmailDriver(GmailConfig(email=ME, token=TOKEN, api_url=gmail.url))
            driver.connect()
            times, counts = [], []
            for i in range(args.live_queries):
                who = [contacts[(i * 37) % len(contacts)]]
                start = time.perf_counter()
                page = driver.query(who, limit=50)
                times.append(time.perf_counter() - start)
                counts.append(len(page.messages))
            driver.close()
        times.sort()
        return {
            "part": "live-first-page",
            "messages": args.live,
            "queries": len(times),
            "median_s": statistics.median(times),
            "p95_s": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
            "max_s": times[-1],
            "messages_per_page": statistics.median(counts) if counts else 0,
        }
    finally:
        shutil.rmtree(data, ignore_errors=True)


PARTS = {"gmail-sync": part_gmail_sync, "imap-sync": part_imap_sync, "live": part_live}


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"Latency added: {args.latency_ms:g} ms per request (the API) or round trip (IMAP).",
        "",
        "| measurement | messages | result |",
        "| --- | ---: | --- |",
    ]
    for r in results:
        if r["part"] == "live-first-page":
            lines.append(
                f"| live Emails list, first page (50) | {r['messages']:,} | median "
                f"{r['median_s'] * 1000:.0f} ms, p95 {r['p95_s'] * 1000:.0f} ms over "
                f"{r['queries']} records |"
            )
        else:
            rate = r["fetched"] / r["seconds"] if r["seconds"] else 0
            extra = f", {r['http_requests']} HTTP requests" if "http_requests" in r else ""
            lines.append(
                f"| keep-a-copy first sync, {r['part'].split('-')[0].upper()} | "
                f"{r['messages']:,} | {r['seconds']:.1f} s ({rate:.0f} messages/s, "
                f"{r['bytes'] / 1e6:.0f} MB{extra}) |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--live", type=int, default=100_000)
    parser.add_argument("--live-queries", type=int, default=20)
    parser.add_argument("--no-imap", action="store_true")
    parser.add_argument("--out")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        print(json.dumps(PARTS[args.part](args)))
        return 0
    results = []
    parts = ["gmail-sync", *([] if args.no_imap else ["imap-sync"]), "live"]
    for part in parts:
        command = [sys.executable, __file__, "--part", part, *sys.argv[1:]]
        done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            return done.returncode
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(result))
        results.append(result)
    text = table(results, args)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
