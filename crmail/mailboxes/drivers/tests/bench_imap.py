"""Benchmark: a first sync (changes + fetch) of generated mixed mail from a real Dovecot.

Run it from the repository root:

    python -m crmail.mailboxes.drivers.tests.bench_imap --count 2000 [--rtt-ms 20]

or as a soak test (``CRMAIL_SOAK=1 pytest -k bench -s``). It prints msg/s and MB/s and
asserts nothing about timings. ``--rtt-ms`` puts a delaying TCP proxy in between (half the
delay each way) to show what pipelining buys on a distant server. Needs root (Dovecot).
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from crmail.mailboxes.drivers.imap import ImapConfig, ImapDriver
from crmail.mailboxes.drivers.tests.mailgen import fill_maildir
from tests.harness.dovecot import DovecotServer


@contextmanager
def delay_proxy(target_port: int, rtt_ms: float) -> Iterator[int]:
    """A TCP proxy on 127.0.0.1 that delays every chunk by rtt/2 in each direction."""
    delay = rtt_ms / 2000
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port_box: list[int] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def pump() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        task = loop.create_task(pump())
        while True:
            data = await reader.read(1 << 20)
            await queue.put((loop.time() + delay, data))
            if not data:
                break
        await task

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
            await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))
        except (asyncio.CancelledError, ConnectionError):  # end quietly at teardown
            client_w.close()

    stop = asyncio.Event()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_box.append(server.sockets[0].getsockname()[1])
        ready.set()
        await stop.wait()
        server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=1)  # connections closed by now end by themselves
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield port_box[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)
        loop.close()


def sync_with_driver(port: int, user: str, password: str) -> tuple[int, int, float]:
    """(messages, bytes, seconds) for connect + changes(None) + fetch of everything."""
    start = time.perf_counter()
    cfg = ImapConfig("127.0.0.1", port, "none", user, password, timeout=120)
    count = total = 0
    with ImapDriver(cfg) as driver:
        delta = driver.changes("INBOX", None)
        for message in driver.fetch("INBOX", delta.new_ids):
            count += 1
            total += len(message.raw or b"")
    return count, total, time.perf_counter() - start


def sync_with_imaplib(port: int, user: str, password: str) -> tuple[int, int, float]:
    """The same with imaplib, UID FETCH of 500 per command, one command at a time."""
    start = time.perf_counter()
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=120)
    imap.login(user, password)
    imap.select("INBOX", readonly=True)
    uids = imap.uid("SEARCH", "ALL")[1][0].split()
    count = total = 0
    for i in range(0, len(uids), 500):
        chunk = b",".join(uids[i : i + 500]).decode()
        _typ, data = imap.uid("FETCH", chunk, "(UID FLAGS BODY.PEEK[])")
        for part in data:
            if isinstance(part, tuple):
                count += 1
                total += len(part[1])
    imap.logout()
    return count, total, time.perf_counter() - start


def report(label: str, result: tuple[int, int, float]) -> None:
    count, total, seconds = result
    print(
        f"{label:<28} {count:6d} msgs {total / 1e6:8.1f} MB {seconds:7.2f} s "
        f"{count / seconds:8.0f} msg/s {total / 1e6 / seconds:7.1f} MB/s"
    )


def run_benchmark(count: int = 2000, rtt_ms: float = 0.0, rounds: int = 3) -> None:
    """Start Dovecot, fill a Maildir with ``count`` mixed messages, sync it ``rounds`` times."""
    with DovecotServer() as server:
        user, password = server.new_user("bench")
        t0 = time.perf_counter()
        fill_maildir(server, user, count)
        print(f"filled {count} messages in {time.perf_counter() - t0:.1f} s")
        ports = [("loopback", server.imap_port)]
        with delay_proxy(server.imap_port, rtt_ms) if rtt_ms else _nothing() as proxy:
            if proxy:
                ports.append((f"{rtt_ms:g} ms RTT", proxy))
            for label, port in ports:
                for _ in range(rounds):
                    report(f"ImapDriver, {label}", sync_with_driver(port, user, password))
                report(f"imaplib 500/cmd, {label}", sync_with_imaplib(port, user, password))


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run_benchmark(args.count, args.rtt_ms, args.rounds)


if __name__ == "__main__":
    main()
