"""Asking DNS: the resolvers of ``CRMAIL_DNS_SERVERS`` (else the system's), with time limits,
and every failure said in words.

Every lookup of email authentication goes through ``resolver()``: the checks of a domain's
records (``checks``, checkdmarc among them), the verification of incoming mail's SPF and
DKIM (``inbound``). Nothing is cached: a record fixed a minute ago is seen at once.
"""

from __future__ import annotations

import dns.exception
import dns.nameserver
import dns.rdata
import dns.rdtypes.ANY.TXT
import dns.resolver
from django.conf import settings

TRY_TIMEOUT = 2.0  # seconds for one server's answer before it is asked again
LIFETIME = 5.0  # seconds for one question, all tries together


class NoSuchName(Exception):
    """The name does not exist (NXDOMAIN)."""


class Unanswered(Exception):
    """DNS gave no usable answer (a timeout, a server failure); the message says which."""


def servers_described() -> str:
    """Which resolvers crmail asks, in words."""
    servers = settings.CRMAIL_DNS_SERVERS
    if not servers:
        return "the system's resolvers"
    return ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in servers)


def resolver(lifetime: float | None = None) -> dns.resolver.Resolver:
    """A resolver for ``CRMAIL_DNS_SERVERS`` (empty: the system's), without a cache; raises
    ``Unanswered`` when the system names no resolver."""
    servers = settings.CRMAIL_DNS_SERVERS
    try:
        found = dns.resolver.Resolver(configure=not servers)
    except dns.resolver.NoResolverConfiguration:
        raise Unanswered(
            "this machine names no DNS resolver (/etc/resolv.conf): set CRMAIL_DNS_SERVERS"
        ) from None
    if servers:
        found.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in servers]
    found.cache = None
    found.timeout = min(TRY_TIMEOUT, LIFETIME)
    found.lifetime = LIFETIME if lifetime is None else lifetime
    return found


def answers(name: str, rdtype: str) -> list[dns.rdata.Rdata]:
    """The records of ``rdtype`` at ``name`` ([] when the name has none of that type);
    ``NoSuchName`` when the name does not exist, ``Unanswered`` when DNS did not say."""
    where = servers_described()
    try:
        answer = resolver().resolve(name, rdtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        raise NoSuchName(f"{name} does not exist in DNS (NXDOMAIN)") from None
    except dns.exception.Timeout:
        raise Unanswered(
            f"DNS did not answer in time ({LIFETIME:g} s) when crmail asked for the "
            f"{rdtype} records of {name} ({where}); try again later"
        ) from None
    except dns.resolver.NoNameservers:
        raise Unanswered(
            f"no DNS server could answer for the {rdtype} records of {name} ({where}): "
            "each failed or refused"
        ) from None
    except dns.exception.DNSException as exc:
        raise Unanswered(
            f"DNS could not be asked for the {rdtype} records of {name}: {exc}"
        ) from None
    return list(answer.rrset or [])


def txt(name: str) -> list[str]:
    """The TXT records at ``name``, each one's strings joined (RFC 7208 section 3.3)."""
    return [
        b"".join(record.strings).decode("utf-8", "replace")
        for record in answers(name, "TXT")
        if isinstance(record, dns.rdtypes.ANY.TXT.TXT)
    ]
