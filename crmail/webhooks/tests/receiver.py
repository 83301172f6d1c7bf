"""A webhook receiver on a free loopback port (a thread with http.server): it keeps every
call and answers from a script of status codes (then 200), verifying nothing itself, so a
test verifies each call with the ``standardwebhooks`` package as a real receiver would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

from tests.harness.serving import serve_in_thread


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes

    def verified(self, secret: str) -> Any:
        """The payload, if the signature is good (else ``WebhookVerificationError``)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    url: str
    calls: list[Call] = field(default_factory=list)
    script: list[int] = field(default_factory=list)  # statuses to answer, in turn
    answer_body: bytes = b'{"ok": true}'
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def receiver(path: str = "/hook") -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # the answer's two writes, without a 40 ms stall

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            got = holder["r"]
            with got.lock:
                got.calls.append(Call(self.path, dict(self.headers.items()), body))
                status = got.script.pop(0) if got.script else 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(got.answer_body)))
            self.end_headers()
            self.wfile.write(got.answer_body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}{path}")
    serve_in_thread(server)
    try:
        yield holder["r"]
    finally:
        server.shutdown()
        server.server_close()
