"""Requests through a trusted reverse proxy: the real client, scheme and host.

``CRMAIL_TRUSTED_PROXIES`` lists addresses and networks. When the peer that connected is
inside one of them, its ``X-Forwarded-For``, ``X-Forwarded-Proto``, ``X-Forwarded-Host``
and ``X-Forwarded-Port`` headers are applied: ``REMOTE_ADDR`` becomes the client's address
(what the sign-in limiter counts), ``wsgi.url_scheme`` becomes https (secure cookies and
CSRF checks, https URLs in the API), and the host the client asked for. From any other
peer those headers (and ``Forwarded``) are removed before Django sees them, so a client
cannot claim another address by sending them.

The headers are read by waitress's own proxy-header code. Waitress's ``trusted_proxy``
setting takes one address or ``*``, so crmail decides per request, by network, whether the
peer is trusted and only then hands the request to it (docs/decisions/019). Behind a chain
of trusted proxies, the ``X-Forwarded-For`` entries they added are skipped from the right:
the client is the nearest address that is not itself a trusted proxy. This lives in the
WSGI application, so it holds under any WSGI server; ``crmail serve`` tells waitress to
leave the headers to it. A request from a trusted proxy is marked (``VIA_PROXY`` in the
environ), so crmail can redirect to https what the proxy received over plain http.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from waitress.proxy_headers import proxy_headers_middleware

from crmail.config.env import Network

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

TRUSTED_HEADERS = frozenset(
    {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port"}
)
# A bound on the proxies in front of crmail, so a long forged chain costs nothing.
MAX_HOPS = 8
VIA_PROXY = "crmail.via_proxy"  # environ key: the request came through a trusted proxy


def _address(entry: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP of one ``X-Forwarded-For`` entry (quotes, brackets and a port allowed)."""
    entry = entry.strip().strip('"')
    if entry.startswith("["):
        entry = entry[1:].partition("]")[0]
    elif entry.count(":") == 1:
        entry = entry.partition(":")[0]
    try:
        address = ipaddress.ip_address(entry)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The WSGI application behind ``CRMAIL_TRUSTED_PROXIES``."""

    def __init__(self, app: WSGIApp, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)
        self.untrusted = proxy_headers_middleware(app, trusted_proxy=None, clear_untrusted=True)
        self.trusted = [
            proxy_headers_middleware(
                app,
                trusted_proxy="*",
                trusted_proxy_count=hops,
                trusted_proxy_headers=set(TRUSTED_HEADERS),
                clear_untrusted=True,
            )
            for hops in range(1, MAX_HOPS + 1)
        ]

    def trusts(self, address: str) -> bool:
        parsed = _address(address)
        return parsed is not None and any(parsed in network for network in self.networks)

    def hops(self, environ: dict[str, Any]) -> int:
        """How many ``X-Forwarded-For`` entries, from the right, trusted proxies added."""
        entries = environ.get("HTTP_X_FORWARDED_FOR", "").split(",")
        hops = 1
        for entry in reversed(entries[1:]):
            if hops >= MAX_HOPS or not self.trusts(entry):
                break
            hops += 1
        return hops

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ.pop(VIA_PROXY, None)
        if self.networks and self.trusts(environ.get("REMOTE_ADDR", "")):
            app = self.trusted[self.hops(environ) - 1]
            environ[VIA_PROXY] = True
        else:
            app = self.untrusted
        return app(environ, start_response)
