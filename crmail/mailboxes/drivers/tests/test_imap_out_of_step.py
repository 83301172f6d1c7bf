"""The IMAP driver against a server that falls out of step: it drops the connection and
never reads on, and a message counts only when its literal was read whole."""

from __future__ import annotations

import socket
import threading

import pytest

from crmail.mailboxes.drivers import imap_wire
from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.drivers.imap import ImapConfig, ImapDriver

pytestmark = pytest.mark.database_independent  # no database: one pass runs it

GOOD = b"* 1 FETCH (UID 1 RFC822.SIZE 5 BODY[] {5}\r\nhello)\r\n"
SECOND = b"* 2 FETCH (UID 2 RFC822.SIZE 5 BODY[] {5}\r\nworld)\r\n"


class FakeImap:
    """Answers login and EXAMINE, then UID FETCH with ``fetch_reply`` ({tag} filled in).

    Every connection is served; ``closed`` counts those the client closed.
    """

    def __init__(self, fetch_reply: bytes) -> None:
        self.fetch_reply = fetch_reply
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.closed = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n")
        for line in reader:
            tag, _, cmd = line.strip().partition(b" ")
            word = cmd.split(b" ")[0].upper()
            if word == b"LOGIN":
                conn.sendall(tag + b" OK [CAPABILITY IMAP4rev1 LITERAL+] in\r\n")
            elif word == b"EXAMINE":
                conn.sendall(
                    b"* 2 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n" + tag + b" OK [READ-ONLY] x\r\n"
                )
            elif cmd.upper().startswith(b"UID FETCH"):
                conn.sendall(self.fetch_reply.replace(b"{tag}", tag))
                if b"{tag} OK" not in self.fetch_reply:
                    break  # a reply cut short: the server hangs up
            elif word == b"LOGOUT":
                conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                break
            else:
                conn.sendall(tag + b" BAD what\r\n")
        self.closed += 1
        conn.close()


def fetch_all(server: FakeImap) -> tuple[list[tuple[str, bytes]], DriverError | None]:
    driver = ImapDriver(ImapConfig("127.0.0.1", server.port, "none", "u", "p", timeout=5))
    got: list[tuple[str, bytes]] = []
    error = None
    try:
        for m in driver.fetch("INBOX", ["1", "2"], sizes={"1": 5, "2": 5}):
            got.append((m.remote_id, m.raw or b""))
    except DriverError as exc:
        error = exc
    assert not driver.connected  # dropped: nothing more is read from this connection
    driver.close()
    return got, error


@pytest.mark.parametrize(
    "reply",
    [
        GOOD + b"X9 OK a tag never sent\r\n" + SECOND + b"{tag} OK done\r\n",
        GOOD + b"+ a continuation nobody asked for\r\n" + SECOND + b"{tag} OK done\r\n",
        GOOD + SECOND.replace(b"UID 2", b"UID 2 FLAGS (\\Seen\x00)") + b"{tag} OK done\r\n",
        GOOD + b"* 2 FETCH (UID 2 FLAGS (" + b"x" * 5000 + b") BODY[] {5}\r\nworld)\r\n"
        b"{tag} OK done\r\n",
    ],
    ids=["unknown-tag", "stray-continuation", "nul-in-a-line", "over-long-line"],
)
def test_a_reply_out_of_step_drops_the_connection(monkeypatch, reply):
    monkeypatch.setattr(imap_wire, "MAX_LINE", 4096)
    server = FakeImap(reply)
    got, error = fetch_all(server)
    assert error is not None and error.kind == "protocol"
    assert got == [("1", b"hello")]


def test_a_literal_cut_short_by_the_server_is_not_a_message():
    server = FakeImap(b"* 1 FETCH (UID 1 RFC822.SIZE 5 BODY[] {500}\r\nhello)\r\n")
    got, error = fetch_all(server)
    assert got == [] and error is not None
