"""The POP3 reader on raw bytes, and against a server that falls out of step."""

from __future__ import annotations

import socket
import threading

import pytest

from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.drivers.pop3 import INBOX, Pop3Config, Pop3Driver
from crmail.mailboxes.drivers.pop3_session import listing, status, whole_message

pytestmark = pytest.mark.database_independent  # no database: one pass runs it


def test_status_lines_are_plus_ok_or_minus_err_and_nothing_else():
    assert status(b"+OK 12 octets\r\n") == (True, b"12 octets")
    assert status(b"+OK\r\n") == (True, b"")
    assert status(b"-ERR no such message\r\n") == (False, b"no such message")
    for line in (b"+OKAY\r\n", b"From: x\r\n", b"* 1 FETCH\r\n", b"\r\n", b"+ \r\n"):
        with pytest.raises(ValueError):
            status(line)


def test_listings_refuse_lines_they_cannot_read():
    assert listing(b"1 00a\r\n2 00b\r\n") == [(1, "00a"), (2, "00b")]
    with pytest.raises(ValueError):
        listing(b"1 00a\r\nFrom: forged\r\n")


def test_a_message_is_whole_only_at_its_listed_size():
    assert whole_message(b"a\r\nb\r\n", 6) == (b"a\r\nb\r\n", True)
    # RFC 1939 §3: the server ended an unterminated last line with a CRLF of its own.
    assert whole_message(b"no end\r\n", 6) == (b"no end", True)
    assert whole_message(b"cut\r\n", 900) == (b"cut\r\n", False)
    assert whole_message(b"a\r\n", None) == (b"a\r\n", False)


class FakeServer:
    """A POP3 server on loopback holding three messages; on the connections numbered in
    ``out_of_step`` (from 1) it answers RETR 2 without a status line."""

    def __init__(self, out_of_step: frozenset[int] = frozenset({1})) -> None:
        self.out_of_step = out_of_step
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pop3_port = self.port
        self.sessions: list[list[bytes]] = []  # the commands of each connection
        self.deleted: set[int] = set()  # applied at QUIT
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            commands: list[bytes] = []
            self.sessions.append(commands)
            broken = len(self.sessions) in self.out_of_step
            threading.Thread(target=self.serve, args=(conn, commands, broken), daemon=True).start()

    def serve(self, conn: socket.socket, commands: list[bytes], broken: bool) -> None:
        reader = conn.makefile("rb")
        conn.sendall(b"+OK ready\r\n")
        live = [n for n in (1, 2, 3) if n not in self.deleted]
        marked: set[int] = set()
        for line in reader:
            cmd = line.strip()
            commands.append(cmd)
            word, _, arg = cmd.partition(b" ")
            if word == b"CAPA":
                reply = b"+OK\r\nUIDL\r\nPIPELINING\r\n.\r\n"
            elif word in (b"USER", b"PASS"):
                reply = b"+OK\r\n"
            elif word == b"UIDL":
                reply = b"+OK\r\n" + b"".join(b"%d id%d\r\n" % (n, n) for n in live) + b".\r\n"
            elif word == b"LIST":
                reply = b"+OK\r\n" + b"".join(b"%d 6\r\n" % n for n in live) + b".\r\n"
            elif word == b"RETR" and int(arg) in live:
                body = b"A: %d\r\n" % int(arg)
                reply = body + b".\r\n" if broken and arg == b"2" else b"+OK\r\n" + body + b".\r\n"
            elif word == b"DELE" and int(arg) in live:
                marked.add(int(arg))
                reply = b"+OK\r\n"
            elif word == b"QUIT":
                self.deleted |= marked
                conn.sendall(b"+OK bye\r\n")
                break
            else:
                reply = b"-ERR no\r\n"
            conn.sendall(reply)
        conn.close()


def test_a_reply_out_of_step_ends_the_session_without_deleting_anything():
    server = FakeServer()
    driver = Pop3Driver(
        Pop3Config("127.0.0.1", server.port, "none", "u", "p", keep_on_server=False)
    )
    driver.connect()
    delta = driver.changes(INBOX, None)
    got = []
    with pytest.raises(DriverError) as failure:
        for message in driver.fetch(INBOX, delta.new_ids):
            got.append(message.remote_id)
            driver.acknowledge(INBOX, {message.remote_id: len(message.raw or b"")})
    assert failure.value.kind == "protocol"
    assert got == ["id1"]
    driver.close()
    (commands,) = server.sessions
    assert b"RETR 3" in commands  # pipelined, never read
    assert not [c for c in commands if c.startswith(b"DELE") or c == b"QUIT"]
    assert server.deleted == set()
