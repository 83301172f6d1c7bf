"""Which network addresses crmail connects to on someone else's say-so.

A URL from a message (a remote image) or from an administrator (a webhook) must not turn
crmail into a way into its own network: ``forbidden_address`` says which addresses are
refused, and ``addresses`` resolves a host once, so a caller checks every answer and then
connects to the address it checked (a DNS answer that changes in between, rebinding,
cannot move the request inside): ``split_url`` takes such a URL apart and ``pinned_pool``
opens a connection pool to the checked address that still speaks to, and verifies TLS for,
the host name. No Django import.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

# urllib3 is imported by the callers that connect (webhooks, the image proxy), not by
# every crmail command that imports this module.
if TYPE_CHECKING:
    import urllib3

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# A label of a host name as DNS spells it (after IDNA): letters, digits and hyphens, not
# first or last; ``_`` too, which some internal names carry.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def host_problem(host: str) -> str | None:
    """Why ``host`` is neither a host name (``mail.example.com``, ``bücher.example``) nor
    an IP address, in words; None when it is one. Empty is for the caller to judge."""
    if not host:
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        name = ""
    labels = name.removesuffix(".").split(".")
    if 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels):
        return None
    return "Enter the server's name, such as mail.example.com, or its IP address."


def forbidden_address(ip: IpAddress) -> bool:
    """Whether ``ip`` is one crmail never connects to for someone else's URL: private,
    loopback, link-local, multicast, reserved, unspecified, shared (CGNAT), or not globally
    routable; IPv6 forms that carry an IPv4 address are judged by that address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and forbidden_address(embedded):
            return True
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def addresses(host: str, port: int) -> list[IpAddress]:
    """Every address ``host`` stands for (an IP literal stands for itself); ``OSError``
    when the name does not resolve."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise OSError(f"not a valid host name: {exc}") from None
    found = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not found:
        raise OSError("the host name has no address")
    return found


class UrlFault(Enum):
    """Why ``split_url`` refused a URL; each caller says it in its own words."""

    INVALID = "invalid"
    SCHEME = "scheme"  # not http or https
    CREDENTIALS = "credentials"  # user:password@ in the URL
    NO_HOST = "no_host"


class BadUrl(ValueError):
    def __init__(self, fault: UrlFault) -> None:
        super().__init__(fault.value)
        self.fault = fault


@dataclass(frozen=True)
class Target:
    """Where an http(s) URL points: the pieces a request to a checked address needs."""

    scheme: str
    host: str  # IDNA-encoded host name, or an IP literal without brackets
    port: int
    path: str  # path and query
    host_header: str


def split_url(url: str) -> Target:
    """``url``'s target; ``BadUrl`` for anything but an http(s) URL with a host and no
    credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadUrl(UrlFault.INVALID) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BadUrl(UrlFault.SCHEME)
    if parts.username is not None or parts.password is not None:
        raise BadUrl(UrlFault.CREDENTIALS)
    hostname = parts.hostname or ""
    try:
        host = hostname if hostname.isascii() else hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadUrl(UrlFault.INVALID) from None
    if not host:
        raise BadUrl(UrlFault.NO_HOST)
    default = 443 if scheme == "https" else 80
    port = port or default
    shown = f"[{host}]" if ":" in host else host
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path, shown if port == default else f"{shown}:{port}")


def pinned_pool(
    target: Target, ip: IpAddress, timeout: urllib3.Timeout
) -> urllib3.HTTPConnectionPool:
    """A pool that connects to ``ip`` (already checked) as if to ``target``'s host: TLS
    sends and verifies the host name. No retries; the caller closes it."""
    import urllib3

    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            str(ip),
            target.port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(str(ip), target.port, timeout=timeout, retries=False)
