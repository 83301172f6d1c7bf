"""Watching an Inbox against a server that falls out of step during IDLE: an answer tagged
for no command in flight, or a continuation nobody asked for, ends the session with a
protocol error (the watcher then reconnects), for the watcher's asyncio session and the
sync driver's IDLE alike. Dovecot never does this, so a scripted server plays it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.drivers.imap import ImapConfig, ImapDriver
from crmail.mailboxes.drivers.imap_idle import IdleSession

pytestmark = pytest.mark.database_independent  # no database: one pass runs it

EXAMINED = b"* 3 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 4] n\r\n"


class StrayServer:
    """Logs in, EXAMINEs, enters IDLE, then sends ``stray`` and waits for the client to go."""

    def __init__(self, stray: bytes) -> None:
        self.stray = stray
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.hung_up = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        reader = conn.makefile("rb")
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 IDLE LITERAL+] ready\r\n")
        for line in reader:
            tag, _, cmd = line.strip().partition(b" ")
            word = cmd.split(b" ")[0].upper()
            if word == b"LOGIN":
                conn.sendall(tag + b" OK [CAPABILITY IMAP4rev1 IDLE LITERAL+] in\r\n")
            elif word == b"EXAMINE":
                conn.sendall(EXAMINED + tag + b" OK [READ-ONLY] x\r\n")
            elif word == b"IDLE":
                conn.sendall(b"+ idling\r\n")
                time.sleep(0.2)
                conn.sendall(self.stray)
            elif word in (b"LOGOUT", b"DONE"):
                break
        self.hung_up.set()
        conn.close()


STRAYS = [
    pytest.param(b"W42 OK an answer to nothing\r\n", id="unknown-tag"),
    pytest.param(b"+ go on\r\n", id="unasked-continuation"),
]


def config(server: StrayServer) -> ImapConfig:
    return ImapConfig("127.0.0.1", server.port, "none", "u", "p", timeout=5)


@pytest.mark.parametrize("stray", STRAYS)
def test_the_watchers_session_ends_on_a_stray_answer_instead_of_reading_on(stray):
    server = StrayServer(stray)

    async def watch() -> None:
        session = IdleSession(config(server))
        await session.open()
        await session.examine()
        await session.idle()
        try:
            await session.wait(10)
        finally:
            session.abort()

    # In a thread of its own, as the watcher runs it: a browser test earlier in the run
    # leaves Playwright's event loop running in this one.
    with pytest.raises(DriverError) as caught, ThreadPoolExecutor(1) as loop_thread:
        loop_thread.submit(asyncio.run, watch()).result()
    assert caught.value.kind == "protocol"
    assert "crmail closed the connection" in str(caught.value)
    assert server.hung_up.wait(5)


@pytest.mark.parametrize("stray", STRAYS)
def test_the_sync_drivers_idle_ends_on_a_stray_answer_and_drops_the_connection(stray):
    server = StrayServer(stray)
    driver = ImapDriver(config(server))
    try:
        with pytest.raises(DriverError) as caught:
            driver.idle("INBOX", timeout=10)
        assert caught.value.kind == "protocol"
        assert not driver.connected  # nothing more is read from this connection
    finally:
        driver.close()
    assert server.hung_up.wait(5)
