"""One POST to a webhook endpoint, and nothing else: no models, no retries.

Only ``http`` and ``https`` URLs. The host is resolved once; unless
``CRMAIL_WEBHOOKS_ALLOW_PRIVATE`` is set, every address it resolves to must be public
(``crmail.net``), and the request goes to the address that was checked (TLS still verifies
the certificate for the host name), so a DNS answer that changes in between cannot move it
inside. Redirects are not followed: a 3xx answer is a failed attempt like any other.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from crmail.config import env
from crmail.net import (
    BadUrl,
    IpAddress,
    Target,
    UrlFault,
    addresses,
    forbidden_address,
    pinned_pool,
    split_url,
)
from crmail.text import repaired

ALLOW_PRIVATE = "CRMAIL_WEBHOOKS_ALLOW_PRIVATE"
CONNECT_TIMEOUT = 5.0
TIMEOUT = 10.0  # seconds for the whole call
EXCERPT_CHARS = 500
READ_LIMIT = 4096  # bytes of the answer read for the excerpt
USER_AGENT = "crmail-webhooks"
URL_MAX = 2000


def private_allowed() -> bool:
    """Whether deliveries may go to private and loopback addresses (tests, a LAN)."""
    return env.flag(ALLOW_PRIVATE)


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a webhook address, in words, or None. A host given as
    an address is checked here; a name is checked (resolved) at each call."""
    try:
        where = target(url)
        if _is_literal(where.host):
            checked_address(where.host, where.port)
    except Refused as exc:
        return str(exc)
    return None


def _is_literal(host: str) -> bool:
    """An address, or ``localhost``: checked without asking DNS."""
    if host.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Refused(Exception):
    """The URL is not called; the message says why."""


_FAULTS = {
    UrlFault.INVALID: "This is not a valid URL.",
    UrlFault.SCHEME: "Only http:// and https:// URLs can receive webhooks.",
    UrlFault.CREDENTIALS: (
        "Put no user name or password in the URL; the signature proves the sender."
    ),
    UrlFault.NO_HOST: "The URL needs a host name, like https://hooks.example.com/crmail.",
}


def target(url: str) -> Target:
    if len(url) > URL_MAX:
        raise Refused(f"The URL is longer than {URL_MAX} characters.")
    if any(c in url for c in "\r\n\t ") or not url.isprintable():
        raise Refused("The URL holds spaces or control characters.")
    try:
        where = split_url(url)
    except BadUrl as exc:
        raise Refused(_FAULTS[exc.fault]) from None
    if "#" in url:
        raise Refused("A URL with a #fragment cannot be called; leave it out.")
    return where


def checked_address(host: str, port: int) -> IpAddress:
    """The address to connect to: every address of ``host`` must be allowed."""
    try:
        found = addresses(host, port)
    except OSError:
        raise Refused(f"The host name {host} does not resolve.") from None
    if not private_allowed() and any(forbidden_address(ip) for ip in found):
        raise Refused(
            f"{host} is a private, loopback or reserved address: crmail does not send "
            f"webhooks inside its own network unless {ALLOW_PRIVATE}=1 is set."
        )
    return found[0]


@dataclass(frozen=True)
class Answer:
    """How one call went: the status (None when no answer came), the time it took, the
    start of the answer's body as text, and what went wrong in words."""

    status: int | None
    latency_ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST ``body`` to ``url`` with ``headers`` (the signature's among them)."""
    import urllib3

    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        where = target(url)
        ip = checked_address(where.host, where.port)
    except Refused as exc:
        return Answer(None, took(), error=str(exc))
    pool = pinned_pool(where, ip, urllib3.Timeout(total=TIMEOUT, connect=CONNECT_TIMEOUT))
    sent = {
        **headers,
        "Host": where.host_header,
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",
    }
    try:
        response = pool.urlopen(
            "POST",
            where.path,
            body=body,
            headers=sent,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            raw = response.read(READ_LIMIT, decode_content=False) or b""
        finally:
            response.release_conn()
    except urllib3.exceptions.NewConnectionError:  # before TimeoutError: it is one of them
        return Answer(None, took(), error="Could not connect: the server refused the connection.")
    except urllib3.exceptions.TimeoutError:
        return Answer(None, took(), error=f"No answer within {TIMEOUT:g} seconds.")
    except urllib3.exceptions.HTTPError as exc:
        return Answer(None, took(), error=_unreachable(exc))
    finally:
        pool.close()
    excerpt = repaired(raw.decode("utf-8", "replace"))[:EXCERPT_CHARS]
    return Answer(response.status, took(), excerpt=excerpt)


def _unreachable(exc: Exception) -> str:
    import urllib3

    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, ConnectionError):
        return "The connection broke before the server answered."
    if isinstance(reason, urllib3.exceptions.SSLError):
        return "The TLS handshake failed (certificate or protocol)."
    return f"The call failed ({type(reason).__name__})."
