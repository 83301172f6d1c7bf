"""Which network addresses crmail connects to on someone else's say-so.

A URL from a message (a remote image) or from an administrator (a webhook) must not turn
crmail into a way into its own network: ``forbidden_address`` says which addresses are
refused, and ``addresses`` resolves a host once, so a caller checks every answer and then
connects to the address it checked (a DNS answer that changes in between, rebinding,
cannot move the request inside). No Django import.
"""

from __future__ import annotations

import ipaddress
import socket

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


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
