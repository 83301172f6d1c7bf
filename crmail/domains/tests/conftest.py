"""Email authentication against a local DNS server (``dns_server``, dnslib on loopback):
crmail's resolver pointed at it, crmail's SPF include published there."""

from __future__ import annotations

import pytest

from crmail.domains import keys
from crmail.domains.models import Domain, State

INCLUDE = "_spf.crm.test"


@pytest.fixture
def zone(dns_server, settings):
    """The test DNS server as crmail's only resolver, and an SPF include crmail asks for
    (its own record lets 127.0.0.1 send)."""
    settings.CRMAIL_DNS_SERVERS = (("127.0.0.1", dns_server.port),)
    settings.CRMAIL_SPF_INCLUDE = INCLUDE
    dns_server.add(INCLUDE, "TXT", "v=spf1 ip4:127.0.0.1 -all")
    return dns_server


def make_domain(name: str = "example.com", state: str = State.PENDING, **fields) -> Domain:
    """A domain with a fresh key, past its code."""
    pair = keys.new_key()
    return Domain.objects.create(
        name=name,
        state=state,
        selector=keys.new_selector(),
        public_key=pair.public_b64,
        private_key=pair.private_pem,
        **fields,
    )


def publish(dns_server, domain: Domain, *, spf: str | None = None, dkim: bool = True) -> None:
    """The records crmail asks ``domain`` to publish (``spf`` instead of its SPF value)."""
    dns_server.add(domain.name, "TXT", spf or f"v=spf1 include:{INCLUDE} ~all")
    if dkim:
        dns_server.add(domain.dkim_name, "TXT", keys.record_value(domain.public_key))
