"""``crmail domain`` run in-process against the test DNS server: add prints the records,
validate exits 0 once they are published and prints each problem until then."""

from __future__ import annotations

import pytest

from crmail.config.cli import main
from crmail.domains import keys
from crmail.domains.models import Domain, State
from crmail.domains.tests.conftest import INCLUDE

pytestmark = pytest.mark.django_db


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_add_validate_and_list(capsys, zone):
    status, out, err = run(capsys, "domain", "add", "Example.com")
    assert status == 0, err
    domain = Domain.objects.get()
    lines = out.splitlines()
    assert lines[0] == "example.com is added and pending until its records are in DNS. Publish:"
    assert lines[1:5] == [
        "SPF: a TXT record named example.com",
        f"  v=spf1 include:{INCLUDE} ~all",
        f"DKIM: a TXT record named {domain.selector}._domainkey.example.com",
        f"  v=DKIM1; k=rsa; p={domain.public_key}",
    ]
    assert "crmail domain validate example.com" in err
    value = keys.record_value(domain.public_key)
    zone_line = f'In a zone file: {domain.dkim_name}. IN TXT "{value[:255]}" "{value[255:]}"'
    assert zone_line in err

    zone.add("example.com", "TXT", "v=spf1 mx -all")
    status, out, _ = run(capsys, "domain", "validate", "example.com")
    assert status == 1
    assert f"Problem: SPF: The SPF record of example.com does not include {INCLUDE}" in out
    assert f"Problem: DKIM: No DKIM key at {domain.dkim_name}" in out
    assert "example.com is pending. The records to publish:" in out

    zone.remove("example.com")
    zone.add("example.com", "TXT", lines[2].strip())
    zone.add(domain.dkim_name, "TXT", lines[4].strip())
    status, out, err = run(capsys, "domain", "validate", "example.com")
    assert status == 0, out + err
    assert "example.com is authenticated: mail crmail sends from it is DKIM-signed." in out
    assert "DMARC: No DMARC record at _dmarc.example.com" in " ".join(err.split())

    status, out, _ = run(capsys, "domain", "list")
    assert status == 0
    assert "example.com" in out and "Authenticated" in out and domain.selector in out


def test_validate_takes_a_domain_still_waiting_for_its_code_as_proven(capsys, zone, org):
    Domain.objects.create(name="example.com", selector="s", public_key="x", private_key="y")
    status, out, _ = run(capsys, "domain", "validate", "example.com")
    assert status == 1
    assert Domain.objects.get().state == State.PENDING
    assert "does not exist in DNS (NXDOMAIN)" in out


def test_mistakes_are_said_in_words(capsys, zone):
    assert run(capsys, "domain", "add", "not a domain")[0] == 1
    status, _, err = run(capsys, "domain", "validate", "example.org")
    assert status == 1
    assert "example.org is not added." in err
    assert "crmail domain add example.org" in err
    run(capsys, "domain", "add", "example.org")
    status, _, err = run(capsys, "domain", "add", "EXAMPLE.org")
    assert (status, " ".join(err.split())) == (1, "Error: example.org is already added.")
    status, out, _ = run(capsys, "domain", "delete", "example.org")
    assert status == 0 and "example.org is removed" in out
    assert not Domain.objects.exists()


def test_check_reports_the_resolvers_and_the_include(capsys, settings, org):
    settings.CRMAIL_DNS_SERVERS = (("10.0.0.53", 53), ("::1", 5353))
    settings.CRMAIL_SPF_INCLUDE = "_spf.crm.example.com"
    status, out, _ = run(capsys, "check")
    assert status == 0, out
    text = " ".join(out.split())
    assert (
        "Domains' SPF, DKIM and DMARC records are looked up through 10.0.0.53:53, [::1]:5353 "
        "(CRMAIL_DNS_SERVERS)." in text
    )
    assert "An authenticated domain's SPF record must name include:_spf.crm.example.com." in text
    settings.CRMAIL_SPF_INCLUDE = ""
    assert "No SPF include is asked of domains" in " ".join(run(capsys, "check")[1].split())


def test_the_settings_are_read_in_words():
    from crmail.config import env
    from crmail.domains.names import BadName, domain_name

    assert env.dns_servers("127.0.0.1:5353, 10.0.0.1, [2001:db8::53]:53") == (
        ("127.0.0.1", 5353),
        ("10.0.0.1", 53),
        ("2001:db8::53", 53),
    )
    assert env.dns_servers("") == ()
    for wrong in ("dns.example.com:53", "127.0.0.1:0", "127.0.0.1:port", "[::1]53"):
        with pytest.raises(env.ConfigError, match="is not a resolver's address"):
            env.dns_servers(wrong)
    assert domain_name("_SPF.crm.example.com.", service=True) == "_spf.crm.example.com"
    with pytest.raises(BadName):
        domain_name("_spf.crm.example.com")
