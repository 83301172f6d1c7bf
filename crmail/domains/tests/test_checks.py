"""A domain's records checked against a local DNS server: every problem said in words."""

from __future__ import annotations

import time

import pytest

from crmail.domains import checks, dns, keys
from crmail.domains.tests.conftest import INCLUDE, make_domain, publish

pytestmark = pytest.mark.django_db


def check(domain):
    return checks.check(domain.name, domain.selector, domain.public_key)


def test_published_records_authenticate_and_dmarc_is_reported(zone):
    domain = make_domain()
    publish(zone, domain)
    zone.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject; adkim=s; rua=mailto:d@example.com")
    report = check(domain)
    assert report.authenticated, report.problems
    assert report.problems == []
    spf, dkim, dmarc = report.findings
    assert spf.ok and f"including {INCLUDE}" in spf.words and "1 of the 10" in spf.words
    assert dkim.ok and domain.dkim_name in dkim.words
    assert not dmarc.blocking
    assert "DMARC policy reject" in dmarc.words
    assert "DKIM alignment is strict" in dmarc.words
    assert "crmail signs as d=example.com, which aligns" in dmarc.words


def test_the_include_may_come_through_another_include(zone):
    domain = make_domain()
    zone.add("_spf.example.com", "TXT", f"v=spf1 ip4:192.0.2.1 include:{INCLUDE} -all")
    publish(zone, domain, spf="v=spf1 mx include:_spf.example.com ~all")
    zone.add("example.com", "MX", "10 mx.example.com")
    assert check(domain).authenticated


def test_no_spf_record(zone):
    domain = make_domain()
    zone.add("example.com", "TXT", "google-site-verification=abc")
    publish(zone, domain, spf="some-other=value")
    report = check(domain)
    assert not report.authenticated
    assert report.problems == [
        f"No SPF record: publish a TXT record at example.com with the value "
        f"v=spf1 include:{INCLUDE} ~all."
    ]


def test_no_spf_record_and_no_include_asked_for(zone, settings):
    settings.CRMAIL_SPF_INCLUDE = ""
    domain = make_domain()
    zone.add(domain.dkim_name, "TXT", keys.record_value(domain.public_key))
    zone.add("example.com", "TXT", "other")
    assert check(domain).problems == [
        "No SPF record: publish a TXT record at example.com naming the servers its mail "
        "leaves through, such as v=spf1 include:<your mail provider's SPF domain> ~all."
    ]
    zone.remove("example.com", "TXT")
    zone.add("example.com", "TXT", "v=spf1 ip4:192.0.2.7 -all")
    assert check(domain).authenticated


def test_spf_without_the_include(zone):
    domain = make_domain()
    publish(zone, domain, spf="v=spf1 ip4:192.0.2.1 -all")
    assert check(domain).problems == [
        f"The SPF record of example.com does not include {INCLUDE}: add include:{INCLUDE} "
        "to it, before its “all”. It reads: v=spf1 ip4:192.0.2.1 -all"
    ]


def test_two_spf_records(zone):
    domain = make_domain()
    publish(zone, domain)
    zone.add("example.com", "TXT", "v=spf1 mx -all")
    (problem,) = check(domain).problems
    assert problem.startswith(
        "example.com has 2 SPF records, and receivers then trust none of them "
        "(RFC 7208 section 4.5): merge them into one record. They read: "
    )
    assert "v=spf1 mx -all" in problem


def test_too_many_dns_lookups(zone):
    domain = make_domain()
    for n in range(11):
        zone.add(f"part{n}.example.net", "TXT", f"v=spf1 ip4:192.0.2.{n} -all")
    record = "v=spf1 " + " ".join(f"include:part{n}.example.net" for n in range(11))
    publish(zone, domain, spf=f"{record} include:{INCLUDE} -all")
    (problem,) = check(domain).problems
    assert problem.startswith(
        "The SPF record of example.com needs 12 DNS lookups, and receivers stop at 10 and "
        "then trust none of it (RFC 7208 section 4.6.4)"
    )


def test_dkim_key_absent(zone):
    domain = make_domain()
    publish(zone, domain, dkim=False)
    (problem,) = check(domain).problems
    assert problem.startswith(f"No DKIM key at {domain.dkim_name}: publish a TXT record there")


def test_dkim_key_not_matching(zone):
    domain = make_domain()
    publish(zone, domain, dkim=False)
    other = keys.new_key()
    zone.add(domain.dkim_name, "TXT", keys.record_value(other.public_b64))
    (problem,) = check(domain).problems
    assert problem.startswith(
        f"The DKIM key at {domain.dkim_name} does not match crmail's key for example.com "
        "(its p= value differs"
    )
    assert problem.endswith("replace the record's value with the one crmail shows.")


def test_dkim_key_revoked_or_doubled(zone):
    domain = make_domain()
    publish(zone, domain, dkim=False)
    zone.add(domain.dkim_name, "TXT", "v=DKIM1; k=rsa; p=")
    assert "is revoked (its p= is empty)" in check(domain).problems[0]
    zone.add(domain.dkim_name, "TXT", keys.record_value(domain.public_key))
    assert check(domain).problems == [
        f"{domain.dkim_name} has 2 DKIM key records, and receivers may take any of them: "
        "keep only crmail's."
    ]


def test_a_key_split_into_strings_as_a_zone_file_writes_it_matches(zone):
    domain = make_domain()
    publish(zone, domain, dkim=False)
    value = keys.record_value(domain.public_key)
    zone.add(domain.dkim_name, "TXT", [value[:100], value[100:300], value[300:]])
    assert check(domain).authenticated


def test_nxdomain(zone):
    domain = make_domain("no-such-domain.example")
    report = check(domain)
    assert report.problems == [
        "no-such-domain.example does not exist in DNS (NXDOMAIN): check its spelling, or "
        "wait until its registration reaches DNS."
    ]
    assert not report.inconclusive


def test_dns_timeout(silent_dns, settings, monkeypatch):
    monkeypatch.setattr(dns, "LIFETIME", 1.0)
    settings.CRMAIL_DNS_SERVERS = (("127.0.0.1", silent_dns.port),)
    domain = make_domain()
    started = time.monotonic()
    report = check(domain)
    assert time.monotonic() - started < 5
    assert report.problems == [
        "DNS did not answer in time (1 s) when crmail asked for the TXT records of "
        f"example.com (127.0.0.1:{silent_dns.port}); try again later."
    ]
    assert report.inconclusive


def test_a_dkim_name_that_times_out_is_inconclusive(zone, monkeypatch):
    monkeypatch.setattr(dns, "LIFETIME", 1.0)
    domain = make_domain()
    publish(zone, domain)
    zone.silence(domain.dkim_name)
    report = check(domain)
    (problem,) = report.problems
    assert problem.startswith("DNS did not answer in time (1 s)")
    assert domain.dkim_name in problem
    assert report.inconclusive


def test_no_dmarc_record_is_reported_but_does_not_block(zone):
    domain = make_domain()
    publish(zone, domain)
    report = check(domain)
    assert report.authenticated
    assert report.notes == [
        "No DMARC record at _dmarc.example.com: receivers apply no policy to mail that fails "
        "SPF and DKIM. Consider v=DMARC1; p=none; rua=mailto:dmarc@example.com to start "
        "with reports."
    ]


def test_a_subdomain_reports_its_organisation_s_dmarc_policy(zone):
    domain = make_domain("eu.example.com")
    publish(zone, domain)
    zone.add("_dmarc.example.com", "TXT", "v=DMARC1; p=quarantine; sp=none")
    (note,) = check(domain).notes
    assert note.startswith(
        "DMARC policy none (receivers only report on mail that fails) (the record of "
        "example.com covers it). DKIM alignment is relaxed"
    )


def test_nothing_is_cached_between_checks(zone):
    domain = make_domain()
    publish(zone, domain, spf="v=spf1 ip4:192.0.2.1 -all")
    assert not check(domain).authenticated
    zone.remove("example.com", "TXT")
    publish(zone, domain, dkim=False)
    assert check(domain).authenticated
