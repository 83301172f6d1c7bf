"""Keep-a-copy first sync through Microsoft Graph beside IMAP, holding the same messages.

    python bench/graph_bench.py [--count 10000] [--latency-ms 20] [--runs 1]

The Graph side is crmail's Graph driver against the local Graph stand-in
(``crmail/mailboxes/tests/standins/graph.py``) answering every request after
``--latency-ms``; the IMAP side is crmail's IMAP driver against a throwaway Dovecot
(from tests/harness: needs root) through a proxy adding the same round-trip time. Both
hold the same generated messages (``bench/corpus.mixed_messages``) in the Inbox. Each
first sync runs in a child process of its own with a fresh data dir (``crmail init``),
timed around ``open_driver`` + ``sync_mailbox``; the child prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ENV_PORT, ENV_USER, ENV_PASSWORD = (
    "CRMAIL_BENCH_IMAP_PORT",
    "CRMAIL_BENCH_IMAP_USER",
    "CRMAIL_BENCH_IMAP_PASSWORD",
)


def _sync(mailbox: Any) -> dict[str, Any]:
    from crmail.mailboxes.connect import open_driver
    from crmail.mailboxes.sync import sync_mailbox

    start = time.perf_counter()
    driver = open_driver(mailbox)
    try:
        report = sync_mailbox(mailbox, driver)
    finally:
        driver.close()
    seconds = time.perf_counter() - start
    mailbox.refresh_from_db()
    return {
        "seconds": round(seconds, 2),
        "fetched": report.fetched,
        "megabytes": round(report.bytes / 1024**2, 1),
        "state": mailbox.state,
        "messages_per_second": round(report.fetched / seconds, 1) if seconds else None,
    }


def child(side: str, count: int, latency_ms: float) -> dict[str, Any]:
    """One first sync in this process, with a fresh data dir."""
    from bench.benchenv import setup_crmail

    keep = {k: os.environ[k] for k in (ENV_PORT, ENV_USER, ENV_PASSWORD) if k in os.environ}
    data = setup_crmail(f"graph-bench-{side}")
    try:
        from django.utils import timezone

        from crmail.mailboxes.models import Mailbox
        from tests import factories

        owner = factories.user("bench@contoso.test")
        if side == "imap":
            from crmail.mailboxes.drivers.tests.bench_imap import delay_proxy

            with delay_proxy(int(keep[ENV_PORT]), latency_ms) as port:
                mailbox = Mailbox.objects.create(
                    owner=owner,
                    email="bench@contoso.test",
                    host="127.0.0.1",
                    port=port,
                    security="none",
                    login=keep[ENV_USER],
                    secret=keep[ENV_PASSWORD],
                )
                return _sync(mailbox)
        from bench.corpus import mixed_messages
        from crmail.mailboxes.tests.standins.graph import GraphState, serve

        state = GraphState("bench@contoso.test")
        base = datetime(2026, 1, 1, tzinfo=UTC)
        for i, raw in enumerate(mixed_messages(count)):
            state.deliver(raw, received=base + timedelta(seconds=i))
        state.latency = latency_ms / 1000
        with serve(state):
            from django.conf import settings

            settings.CRMAIL_GRAPH_API_URL = state.base_url
            mailbox = factories.api_mailbox(
                "graph",
                "bench@contoso.test",
                state.add_token(),
                owner=owner,
                access_token_expires_at=timezone.now() + timedelta(hours=2),
            )
            result = _sync(mailbox)
            result["requests"] = len(state.requests)
            return result
    finally:
        shutil.rmtree(data, ignore_errors=True)


def run_child(side: str, count: int, latency_ms: float, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            side,
            "--count",
            str(count),
            "--latency-ms",
            str(latency_ms),
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{side} run failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--child", choices=("graph", "imap"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.count, args.latency_ms)))
        return

    from bench.corpus import fill, mixed_messages
    from tests.harness.dovecot import DovecotServer

    rows: list[tuple[str, dict[str, Any]]] = []
    with DovecotServer(users={}) as server:
        user, password = server.new_user("bench")
        fill(server, user, mixed_messages(args.count))
        env = {ENV_PORT: str(server.imap_port), ENV_USER: user, ENV_PASSWORD: password}
        for _ in range(args.runs):
            rows.append(("IMAP (Dovecot)", run_child("imap", args.count, args.latency_ms, env)))
            rows.append(
                ("Microsoft Graph (stand-in)", run_child("graph", args.count, args.latency_ms, env))
            )
    print(f"First keep-a-copy sync of {args.count} messages, {args.latency_ms:g} ms per round trip")
    print("| connector | seconds | messages/s | MB | requests | state |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in rows:
        print(
            f"| {name} | {r['seconds']} | {r['messages_per_second']} | {r['megabytes']} | "
            f"{r.get('requests', '')} | {r['state']} |"
        )


if __name__ == "__main__":
    main()
