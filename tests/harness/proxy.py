"""A tiny reverse proxy on loopback, and an HTTP client that connects from a chosen address.

``ReverseProxy`` stands in front of a real ``crmail serve`` the way nginx does with
``proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`` (and ``-Proto``, ``-Host``):
it appends the address its client connected from to ``X-Forwarded-For``, says the request
came over ``https``, and connects upstream from an address of its own choosing (all of
127.0.0.0/8 is this machine), so crmail can be told to trust exactly that address.

``Client`` connects from any loopback address, so one test plays many clients; it keeps
cookies and fills in the CSRF token of crmail's forms.
"""

from __future__ import annotations

import http.client
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


class ReverseProxy:
    """Forwards every request to ``upstream``, adding X-Forwarded-For/-Proto/-Host."""

    def __init__(self, upstream_port: int, *, source: str = "127.0.0.2") -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                before = self.headers.get("X-Forwarded-For")
                client = self.client_address[0]
                headers["X-Forwarded-For"] = f"{before}, {client}" if before else client
                headers["X-Forwarded-Proto"] = "https"
                headers["X-Forwarded-Host"] = self.headers.get("Host", "")
                upstream = http.client.HTTPConnection(
                    "127.0.0.1", upstream_port, timeout=60, source_address=(proxy.source, 0)
                )
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    content = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = forward

        self.source = source
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ReverseProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    text: str


CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass
class Client:
    """HTTP/1.0-style requests to ``port`` on 127.0.0.1, connecting from ``source``."""

    port: int
    source: str = "127.0.0.1"
    https: bool = False  # the origin the browser would send (through an HTTPS proxy)
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=60, source_address=(self.source, 0)
        )
        try:
            connection.request(method, path, body=body, headers=sent)
            answer = connection.getresponse()
            text = answer.read().decode("utf-8", "replace")
        finally:
            connection.close()
        for cookie in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name.strip()] = rest.partition(";")[0]
        return Response(answer.status, answer.headers, text)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return self.request("GET", path, headers=headers)

    def form_token(self, path: str) -> str:
        page = self.get(path)
        match = CSRF_FIELD.search(page.text)
        assert match, f"no form at {path}: {page.status}"
        return match.group(1)

    def post_form(
        self, path: str, data: dict[str, str], headers: dict[str, str] | None = None
    ) -> Response:
        origin = f"{'https' if self.https else 'http'}://127.0.0.1:{self.port}"
        sent = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": origin,
            "Referer": origin + path,
            **(headers or {}),
        }
        return self.request("POST", path, urlencode(data).encode(), sent)
