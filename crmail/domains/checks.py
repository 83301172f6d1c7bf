"""A domain's records checked in DNS, each finding in words (SPEC F10, decision 054).

A domain is authenticated when DNS shows, at that moment:

- **SPF**: exactly one SPF record at the domain (two or more make receivers trust none,
  RFC 7208 section 4.5), needing at most 10 DNS lookups (section 4.6.4), and naming
  ``CRMAIL_SPF_INCLUDE`` (directly or through its own includes) when one is set;
- **DKIM**: one key record at ``<selector>._domainkey.<domain>`` whose ``p=`` is the public
  half of crmail's key for the domain.

**DMARC** is reported beside them (checkdmarc): the policy a receiver applies, and whether
crmail's signatures align with it. It does not decide the state: a domain without DMARC
can be authenticated. The SPF record is parsed, its lookups counted and its includes
followed by checkdmarc, through ``dns.resolver()`` like every other question.

A finding DNS could not decide (a timeout, a failing server) is ``inconclusive``: it
keeps the domain from being authenticated, but does not take an authenticated domain's
state away (``actions.validate``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import checkdmarc.dmarc
import checkdmarc.spf
import checkdmarc.utils
import dns.exception
from django.conf import settings

from crmail.domains import dns as lookup
from crmail.domains.keys import record_value, spf_value

MAX_LOOKUPS = 10  # RFC 7208 section 4.6.4
# What a lookup inside checkdmarc raises when DNS does not answer.
DNS_FAILURES = (dns.exception.DNSException, checkdmarc.utils.DNSException, lookup.Unanswered)


@dataclass(frozen=True)
class Finding:
    record: str  # "Domain", "SPF", "DKIM" or "DMARC"
    ok: bool
    words: str
    blocking: bool = True  # False: reported only (DMARC)
    inconclusive: bool = False  # DNS did not say: nothing is known either way

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    @property
    def authenticated(self) -> bool:
        return all(f.ok for f in self.findings if f.blocking)

    @property
    def problems(self) -> list[str]:
        return [f.words for f in self.findings if f.blocking and not f.ok]

    @property
    def notes(self) -> list[str]:
        return [f.words for f in self.findings if not f.blocking]

    @property
    def inconclusive(self) -> bool:
        """Every problem is DNS not answering: the records may well be right."""
        failed = [f for f in self.findings if f.blocking and not f.ok]
        return bool(failed) and all(f.inconclusive for f in failed)


def check(name: str, selector: str, public_b64: str) -> Report:
    """What DNS shows of ``name``'s SPF, DKIM and DMARC records now."""
    checkdmarc.utils.DNS_CACHE.clear()  # its answers are kept for 30 minutes otherwise
    try:
        records = lookup.txt(name)
    except lookup.NoSuchName:
        return Report(
            [
                Finding(
                    "Domain",
                    False,
                    f"{name} does not exist in DNS (NXDOMAIN): check its spelling, or wait "
                    "until its registration reaches DNS.",
                )
            ]
        )
    except lookup.Unanswered as exc:
        return Report([Finding("Domain", False, _sentence(exc), inconclusive=True)])
    return Report(
        [*spf_findings(name, records), dkim_finding(name, selector, public_b64), *dmarc(name)]
    )


def _sentence(exc: BaseException) -> str:
    words = str(exc)
    return words[:1].upper() + words[1:] + ("" if words.endswith(".") else ".")


def _is_spf(record: str) -> bool:
    return record.lower() == "v=spf1" or record.lower().startswith("v=spf1 ")


def spf_findings(name: str, records: list[str]) -> list[Finding]:
    include = settings.CRMAIL_SPF_INCLUDE
    found = [r for r in records if _is_spf(r)]
    if not found:
        publish = (
            f"with the value {spf_value()}"
            if include
            else "naming the servers its mail leaves through, such as "
            "v=spf1 include:<your mail provider's SPF domain> ~all"
        )
        return [Finding("SPF", False, f"No SPF record: publish a TXT record at {name} {publish}.")]
    if len(found) > 1:
        return [
            Finding(
                "SPF",
                False,
                f"{name} has {len(found)} SPF records, and receivers then trust none of them "
                "(RFC 7208 section 4.5): merge them into one record. They read: "
                + " | ".join(found),
            )
        ]
    record = found[0]
    try:
        parsed = checkdmarc.spf.parse_spf_record(
            record, name, resolver=lookup.resolver(), ignore_too_many_lookups=True
        )
    except checkdmarc.spf.SPFError as exc:
        return [Finding("SPF", False, f"The SPF record of {name} cannot be used: {exc} ({record})")]
    except DNS_FAILURES as exc:
        return [
            Finding(
                "SPF",
                False,
                f"DNS did not answer while crmail followed the SPF record of {name} ({exc}); "
                "try again later.",
                inconclusive=True,
            )
        ]
    findings = []
    lookups = int(parsed.get("dns_lookups") or 0)
    if lookups > MAX_LOOKUPS:
        findings.append(
            Finding(
                "SPF",
                False,
                f"The SPF record of {name} needs {lookups} DNS lookups, and receivers stop at "
                f"{MAX_LOOKUPS} and then trust none of it (RFC 7208 section 4.6.4): remove the "
                f"includes and mechanisms it does not need. It reads: {record}",
            )
        )
    elif parsed.get("error"):
        findings.append(
            Finding("SPF", False, f"The SPF record of {name} cannot be used: {parsed['error']}")
        )
    if include:
        # Past an error checkdmarc stops following the record: then only its own terms count.
        if findings:
            named = f"include:{include}" in record.lower().split()
        else:
            named = includes(parsed.get("parsed") or {}, include)
    if include and not named:
        findings.append(
            Finding(
                "SPF",
                False,
                f"The SPF record of {name} does not include {include}: add include:{include} "
                f"to it, before its “all”. It reads: {record}",
            )
        )
    if findings:
        return findings
    including = f", including {include}" if include else ""
    return [
        Finding(
            "SPF",
            True,
            f"One SPF record{including}, needing {lookups} of the {MAX_LOOKUPS} DNS lookups "
            f"allowed: {record}",
        )
    ]


def includes(parsed: dict[str, Any], include: str) -> bool:
    """Whether a parsed SPF record (checkdmarc's) passes mail through ``include``: an
    ``include:`` of it (qualifier ``+``) in the record or in a record it includes or
    redirects to."""
    for mechanism in parsed.get("mechanisms") or []:
        if mechanism.get("mechanism") != "include" or mechanism.get("action") != "pass":
            continue
        if str(mechanism.get("value", "")).lower().rstrip(".") == include:
            return True
        if includes(mechanism.get("parsed") or {}, include):
            return True
    redirect = parsed.get("redirect")
    if isinstance(redirect, dict):
        if str(redirect.get("domain", "")).lower().rstrip(".") == include:
            return True
        return includes(redirect.get("parsed") or {}, include)
    return False


def dkim_tags(record: str) -> dict[str, str]:
    """A DKIM key record's tags (RFC 6376 section 3.2), whitespace taken out of values."""
    tags = {}
    for part in record.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            tags[key.strip().lower()] = "".join(value.split())
    return tags


def dkim_finding(name: str, selector: str, public_b64: str) -> Finding:
    where = f"{selector}._domainkey.{name}"
    try:
        records = lookup.txt(where)
    except lookup.NoSuchName:
        records = []
    except lookup.Unanswered as exc:
        return Finding("DKIM", False, _sentence(exc), inconclusive=True)
    keys = [r for r in records if "p" in dkim_tags(r)]
    if not keys:
        return Finding(
            "DKIM",
            False,
            f"No DKIM key at {where}: publish a TXT record there with the value crmail shows "
            f"({record_value(public_b64)[:30]}…).",
        )
    if len(keys) > 1:
        return Finding(
            "DKIM",
            False,
            f"{where} has {len(keys)} DKIM key records, and receivers may take any of them: "
            "keep only crmail's.",
        )
    tags = dkim_tags(keys[0])
    published = tags.get("p", "")
    if tags.get("v", "DKIM1") != "DKIM1":
        words = f"The record at {where} is not a DKIM key (its v= is {tags['v']}, not DKIM1)"
    elif not published:
        words = f"The DKIM key at {where} is revoked (its p= is empty)"
    elif tags.get("k", "rsa") != "rsa":
        words = f"The DKIM key at {where} is a {tags['k']} key; crmail's is RSA"
    elif published != public_b64:
        words = (
            f"The DKIM key at {where} does not match crmail's key for {name} (its p= value "
            f"differs: it begins {published[:12]}…, crmail's {public_b64[:12]}…)"
        )
    else:
        return Finding("DKIM", True, f"The DKIM key at {where} is crmail's.")
    return Finding("DKIM", False, f"{words}: replace the record's value with the one crmail shows.")


POLICIES = {
    "none": "none (receivers only report on mail that fails)",
    "quarantine": "quarantine (mail that fails goes to spam)",
    "reject": "reject (mail that fails is refused)",
}


def dmarc(name: str) -> list[Finding]:
    """DMARC in words: the policy and where it was found, and the alignment of crmail's
    signatures (``d=`` the domain itself, so aligned in strict and relaxed mode alike)."""
    try:
        result = checkdmarc.dmarc.check_dmarc(
            name, resolver=lookup.resolver(), ignore_unrelated_records=True
        )
    except (*DNS_FAILURES, checkdmarc.dmarc.DMARCError) as exc:
        return [Finding("DMARC", False, f"DMARC could not be checked: {exc}.", blocking=False)]
    if not result.get("valid") or not result.get("record"):
        error = str(result.get("error") or "no record")
        if "does not exist" in error:
            words = (
                f"No DMARC record at _dmarc.{name}: receivers apply no policy to mail that "
                f"fails SPF and DKIM. Consider v=DMARC1; p=none; rua=mailto:dmarc@{name} to "
                "start with reports."
            )
        else:
            words = f"The DMARC record for {name} cannot be used: {error}"
        return [Finding("DMARC", False, words, blocking=False)]
    tags = result.get("tags") or {}
    location = str(result.get("location") or name)
    policy = str((tags.get("p") or {}).get("value", "none"))
    if location != name:
        policy = str((tags.get("sp") or {}).get("value", policy))
    mode = "strict" if (tags.get("adkim") or {}).get("value") == "s" else "relaxed"
    found_at = "" if location == name else f" (the record of {location} covers it)"
    return [
        Finding(
            "DMARC",
            True,
            f"DMARC policy {POLICIES.get(policy, policy)}{found_at}. DKIM alignment is {mode}: "
            f"crmail signs as d={name}, which aligns with mail from {name}.",
            blocking=False,
        )
    ]
