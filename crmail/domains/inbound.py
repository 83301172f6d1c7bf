"""Whether mail that claims an authenticated domain comes from it: SPF (pyspf) of the
connecting address for the envelope sender, or a DKIM signature (dkimpy) of the domain
that verifies. Both ask DNS through ``dns.resolver()`` (``CRMAIL_DNS_SERVERS``).

The BCC Dropbox asks this of mail whose From address is at an authenticated domain
(decision 052, "Who may send"). Either check passing is enough, as for DMARC, and only
an *aligned* one counts: the envelope sender's domain (SPF) or the signature's ``d=``
(DKIM) must be the From domain or share its organisational domain (RFC 7489 section
3.1, relaxed mode). A DNS failure makes the outcome ``temporary``: try again later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import checkdmarc.utils
import dkim
import spf

from crmail.domains import dns as lookup
from crmail.domains.checks import dkim_tags
from crmail.domains.names import domain_of


def _spf_dns(name: str, qtype: str, strict: Any = True, timeout: Any = None) -> list[Any]:
    """pyspf's ``DNSLookup`` (its one hook for another resolver), answered through
    ``dns.resolver()``, each answer as pyspf's own dnspython lookup gives it."""
    try:
        records = lookup.answers(name, qtype)
    except lookup.NoSuchName:
        return []
    except lookup.Unanswered as exc:
        raise spf.TempError(f"DNS: {exc}") from None
    found: list[Any] = []
    for record in records:
        if qtype in ("A", "AAAA"):
            found.append(((name, qtype), record.address))  # type: ignore[attr-defined]
        elif qtype == "MX":
            found.append(((name, qtype), (record.preference, record.exchange)))  # type: ignore[attr-defined]
        elif qtype == "PTR":
            found.append(((name, qtype), record.target.to_text(True)))  # type: ignore[attr-defined]
        elif qtype in ("TXT", "SPF"):
            found.append(((name, qtype), record.strings))  # type: ignore[attr-defined]
    return found


spf.DNSLookup = _spf_dns


@dataclass(frozen=True)
class Outcome:
    passed: bool
    detail: str  # in words, for the SMTP reply and the administrators' list
    temporary: bool = False  # DNS did not answer: the sender may try again


def aligned(one: str, other: str) -> bool:
    """The same domain, or the same organisational domain (the public suffix list)."""
    one, other = one.lower().rstrip("."), other.lower().rstrip(".")
    if one == other:
        return True
    return bool(one and other) and (
        checkdmarc.utils.get_base_domain(one) == checkdmarc.utils.get_base_domain(other)
    )


def spf_result(peer: str, envelope_from: str) -> tuple[str, str]:
    """pyspf's result (pass, fail, softfail, neutral, none, permerror, temperror) for mail
    from ``envelope_from`` through ``peer``, and its explanation."""
    if not peer or not envelope_from:
        return "none", "no envelope sender or client address to check"
    helo = domain_of(envelope_from) or "unknown"
    result, explanation = spf.check2(
        i=peer, s=envelope_from, h=helo, timeout=lookup.LIFETIME * 4, querytime=lookup.LIFETIME * 4
    )
    return str(result), str(explanation)


def dkim_result(raw: bytes, domain: str) -> tuple[bool, str, bool]:
    """(verified, in words, DNS failed) for the DKIM signatures of ``raw`` aligned with
    ``domain``: the first that verifies is enough."""
    unanswered: list[str] = []

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            records = lookup.txt(name.decode("ascii", "replace").rstrip("."))
        except lookup.NoSuchName:
            return None
        except lookup.Unanswered as exc:
            unanswered.append(str(exc))
            return None
        keys = [r for r in records if "p" in dkim_tags(r)]
        return keys[0].encode() if len(keys) == 1 else None

    try:
        signer = dkim.DKIM(raw)
    except dkim.DKIMException as exc:
        return False, f"the message cannot be read for DKIM ({exc})", False
    count = sum(1 for name, _ in signer.headers if name.lower() == b"dkim-signature")
    seen = []
    for index in range(count):
        try:
            verified = signer.verify(idx=index, dnsfunc=txt)
        except dkim.DKIMException:
            verified = False
        signed_by = (signer.domain or b"").decode("ascii", "replace")
        seen.append(signed_by)
        if verified and aligned(signed_by, domain):
            return True, f"a DKIM signature of {signed_by} verifies", False
    if unanswered:
        return False, f"the DKIM key could not be read ({unanswered[0]})", True
    if not count:
        return False, f"it has no DKIM signature of {domain}", False
    mine = [d for d in seen if d and aligned(d, domain)]
    if not mine:
        return False, f"its DKIM signatures are not {domain}'s ({', '.join(seen)})", False
    return False, f"its DKIM signature of {mine[0]} does not verify", False


def authenticate(domain: str, peer: str, envelope_from: str, raw: bytes) -> Outcome:
    """Whether mail From ``domain`` passes SPF (aligned) or DKIM (aligned)."""
    result, _ = spf_result(peer, envelope_from)
    envelope_domain = domain_of(envelope_from)
    spf_aligned = aligned(envelope_domain, domain)
    if result == "pass" and spf_aligned:
        return Outcome(True, f"SPF passes for {peer} sending as {envelope_domain}")
    verified, dkim_words, dkim_unanswered = dkim_result(raw, domain)
    if verified:
        return Outcome(True, dkim_words)
    if result == "pass":
        spf_words = f"SPF passes for {envelope_domain}, which is not {domain}"
    else:
        spf_words = f"SPF gives {result} for {peer} sending as {envelope_domain or '(none)'}"
    return Outcome(
        False,
        f"{spf_words}, and {dkim_words}",
        temporary=dkim_unanswered or result == "temperror",
    )
