"""Who fetched a pixel or followed a link: a coarse client kind, and whether it was
probably not a person (SPEC F9, decision 057).

Mail-security scanners (Barracuda, Mimecast, Proofpoint, Microsoft's link checks) fetch
images and follow links of mail as it arrives; privacy proxies (Apple Mail Privacy
Protection) fetch every image whether or not anyone reads the mail; link previews and
scripts do the same. Such hits are *marked* (``scanner`` with a reason), never dropped:
the figures leave them out and the pages say "opened (probably by a scanner)". Signs:

- the user agent (``data/scanner_agents.txt``), an empty one, or the bare ``Mozilla/5.0``
  Apple's proxies send;
- the address (``data/scanner_networks.txt``: the operators' published ranges);
- a prefetch: a HEAD request, or ``Purpose``/``Sec-Purpose``/``X-Moz: prefetch``;
- timing (``recording``): within seconds of sending, or several links of one message
  followed within a second or two.

Gmail's and Yahoo's image proxies fetch the pixel when the person opens the message, so
they count (as Gmail, Yahoo Mail) unless another sign says otherwise.

Pure functions on strings; the data files are read once.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crmail.insights.models import ClientKind

DATA = Path(__file__).parent / "data"
# Apple Mail Privacy Protection's proxies send this and nothing more.
BARE_AGENT = "mozilla/5.0"
# "bot" closing a word (Googlebot, AdsBot-Google), but not a Cubot phone.
_GENERIC_BOT = re.compile(r"(?<!cu)bot\b|crawler|spider|scanner\b", re.IGNORECASE)
_PREFETCH_HEADERS = ("HTTP_PURPOSE", "HTTP_SEC_PURPOSE", "HTTP_X_PURPOSE", "HTTP_X_MOZ")
WHAT = {
    "scanner": "a mail-security scanner",
    "proxy": "a privacy proxy",
    "preview": "a link preview",
    "automated": "an automated client",
}


@dataclass(frozen=True)
class Verdict:
    client: str  # a ClientKind value
    scanner: bool
    reason: str = ""  # why it is marked, in words


@dataclass(frozen=True)
class _Entry:
    kind: str
    name: str

    @property
    def words(self) -> str:
        return f"{WHAT[self.kind]} ({self.name})"


def _rows(filename: str) -> list[tuple[str, str, str]]:
    rows = []
    for line in (DATA / filename).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, kind, name = (part.strip() for part in line.split("|", 2))
        if kind not in WHAT:
            raise ValueError(f"{filename}: unknown kind {kind!r} in {line!r}")
        rows.append((pattern, kind, name))
    return rows


@functools.cache
def agents() -> tuple[tuple[str, _Entry], ...]:
    """(lower-case piece of a user agent, what it is), from the data file."""
    return tuple((p.lower(), _Entry(k, n)) for p, k, n in _rows("scanner_agents.txt"))


@functools.cache
def networks() -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, _Entry], ...]:
    return tuple(
        (ipaddress.ip_network(p, strict=True), _Entry(k, n))
        for p, k, n in _rows("scanner_networks.txt")
    )


def agent_entry(user_agent: str) -> _Entry | None:
    lowered = user_agent.lower()
    for piece, entry in agents():
        if piece in lowered:
            return entry
    found = _GENERIC_BOT.search(user_agent)
    if found:
        return _Entry("automated", found.group(0))
    return None


def network_entry(address: str) -> _Entry | None:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for network, entry in networks():
        if ip.version == network.version and ip in network:
            return entry
    return None


def client_kind(user_agent: str) -> str:
    """A coarse kind of mail program from its user agent."""
    ua = user_agent.lower()
    if "googleimageproxy" in ua:
        return ClientKind.GMAIL
    if "yahoomailproxy" in ua:
        return ClientKind.YAHOO
    if any(m in ua for m in ("microsoft outlook", "ms-office", "msoffice", "outlook-")):
        return ClientKind.OUTLOOK
    if ua.strip() == BARE_AGENT or "dataaccessd" in ua:
        return ClientKind.APPLE
    apple_device = any(d in ua for d in ("iphone", "ipad", "macintosh"))
    if apple_device and "applewebkit" in ua and "safari/" not in ua and "chrome" not in ua:
        return ClientKind.APPLE  # Apple Mail's message view: WebKit without Safari
    if any(m in ua for m in ("mobile", "android", "iphone", "ipad")):
        return ClientKind.MOBILE
    if any(m in ua for m in ("windows", "macintosh", "x11", "linux", "cros")):
        return ClientKind.DESKTOP
    return ClientKind.UNKNOWN


def judge(
    user_agent: str, address: str, method: str = "GET", meta: Mapping[str, str] | None = None
) -> Verdict:
    """What fetched: its client kind, and whether (and why) it was probably not a person.
    ``meta`` holds the request's headers as WSGI names them (``HTTP_PURPOSE``)."""
    ua = " ".join(user_agent.split())
    client: str = client_kind(ua)
    if not ua:
        return Verdict(ClientKind.AUTOMATED, True, "an automated client (no user agent)")
    entry = agent_entry(ua)
    if entry is not None:
        return Verdict(
            ClientKind.APPLE if entry.kind == "proxy" else ClientKind.AUTOMATED, True, entry.words
        )
    if ua.lower() == BARE_AGENT:
        return Verdict(ClientKind.APPLE, True, "a privacy proxy (Apple Mail Privacy Protection)")
    entry = network_entry(address)
    if entry is not None:
        kind: str = ClientKind.APPLE if entry.kind == "proxy" else client
        return Verdict(kind, True, entry.words + " by its address")
    if method.upper() == "HEAD":
        return Verdict(client, True, "a prefetch (HEAD request)")
    for header in _PREFETCH_HEADERS:
        value = str((meta or {}).get(header, "")).lower()
        if "prefetch" in value or "preview" in value:
            return Verdict(client, True, "a prefetch (the browser said so)")
    return Verdict(client, False)
