"""The POP3 reader on raw bytes, and against a server that falls out of step."""

from __future__ import annotations

import socket
import threading

import pytest

from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.drivers.pop3 import INBOX, Pop3Config, Pop3Driver
from crmail.mailboxes.drivers.pop3_session import listing, status, whole_message


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
    """A POP3 server on loopback that answers RETR 2 with a line out of step."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.commands: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        reader = conn.makefile("rb")
        conn.sendall(b"+OK ready\r\n")
        replies = {
            b"CAPA": b"+OK\r\nUIDL\r\nPIPELINING\r\n.\r\n",
            b"USER": b"+OK\r\n",
            b"PASS": b"+OK\r\n",
            b"UIDL": b"+OK\r\n1 one\r\n2 two\r\n3 three\r\n.\r\n",
            b"LIST": b"+OK\r\n1 6\r\n2 6\r\n3 6\r\n.\r\n",
            b"RETR 1": b"+OK\r\nA: 1\r\n.\r\n",
            b"RETR 2": b"A: 2\r\n.\r\n",  # no status line: out of step
            b"RETR 3": b"+OK\r\nA: 3\r\n.\r\n",
            b"DELE 1": b"+OK\r\n",
            b"QUIT": b"+OK bye\r\n",
        }
        for line in reader:
            cmd = line.strip()
            self.commands.append(cmd)
            key = cmd if cmd.startswith((b"RETR", b"DELE")) else cmd.split(b" ")[0]
            conn.sendall(replies.get(key, b"-ERR unknown\r\n"))
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
    assert got == ["one"]
    driver.close()
    server.thread.join(timeout=10)
    assert b"RETR 3" in server.commands  # pipelined, never read
    assert not [c for c in server.commands if c.startswith(b"DELE") or c == b"QUIT"]
