"""Finding the original correspondent of a conversation forwarded to the dropbox (SPEC F6).

A user who forwards an old thread to their dropbox is its From, and the dropbox its To: the
customer is only inside the forwarded part. crmail looks there with the user's pattern, a
regular expression (``DropboxSetting.forward_pattern``); the default takes the first
``From:`` line of the forwarded part, as mail programs write it ("From: Ann Lee
<ann@acme.com>", "From: Ann Lee [mailto:ann@acme.com]", "> From: ann@acme.com"). A
pattern's named group ``address``, else its first group, else its whole match, holds the
address. A message forwarded as an attachment (message/rfc822) is read by its own From
header first.

Patterns are the ``regex`` module's, run with a time limit: a pattern that would take
forever on some text gives up on that text instead of holding a worker.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from email.message import Message as EmailMessage

import regex

MAX_PATTERN = 500
# Of a long body, the start is where a forwarded header is.
MAX_TEXT = 200_000
TIMEOUT = 0.5  # seconds a pattern may spend on one message
DEFAULT = r"(?mi)^[ \t>]*From:[ \t]*(?P<address>.+)$"
_ADDRESS = regex.compile(r"[^\s<>\[\]()\"',;:@]+@[A-Za-z0-9](?:[A-Za-z0-9-]*\.)+[A-Za-z]{2,}")


class BadPattern(ValueError):
    """The pattern cannot be used; the message says why in words."""


def check(pattern: str) -> str:
    """``pattern`` stripped, when it can be used (empty: the default); ``BadPattern``."""
    pattern = pattern.strip()
    if not pattern:
        return ""
    if len(pattern) > MAX_PATTERN:
        raise BadPattern(f"A pattern has at most {MAX_PATTERN} characters.")
    try:
        compiled = regex.compile(pattern)
    except regex.error as exc:
        raise BadPattern(f"This is not a regular expression crmail can read: {exc}.") from None
    try:
        compiled.search("", timeout=TIMEOUT)
    except TimeoutError:  # pragma: no cover (an empty text is quick for any pattern)
        raise BadPattern("This pattern takes too long even on an empty text.") from None
    if compiled.groups and "address" not in compiled.groupindex and compiled.groups > 1:
        raise BadPattern("With several groups, name the one that holds the address (?P<address>…).")
    return pattern


def correspondent(raw: bytes, text: str, pattern: str, *, exclude: set[str]) -> str:
    """The original correspondent's address (lower case) in a forwarded conversation, or
    "": a forwarded message/rfc822 part's From, else the first address that ``pattern``
    (empty: the default) finds in ``text`` that is not in ``exclude`` (the forwarder's own
    addresses and the dropbox's)."""
    for found in _attached_senders(raw):
        if found not in exclude:
            return found
    compiled = regex.compile(pattern or DEFAULT)
    try:
        for match in compiled.finditer(text[:MAX_TEXT], timeout=TIMEOUT):
            found = _address_in(_holding(match))
            if found and found not in exclude:
                return found
    except TimeoutError:
        return ""
    return ""


def _holding(match: regex.Match[str]) -> str:
    if "address" in match.re.groupindex:
        return match.group("address") or ""
    if match.re.groups:
        return match.group(1) or ""
    return match.group(0)


def _address_in(text: str) -> str:
    _, parsed = email.utils.parseaddr(text)
    if parsed and _ADDRESS.fullmatch(parsed):
        return parsed.lower()
    found = _ADDRESS.search(text)
    return found.group(0).lower().rstrip(".") if found else ""


def _attached_senders(raw: bytes) -> list[str]:
    """The From addresses of message/rfc822 parts (a message forwarded as an attachment)."""
    if b"message/rfc822" not in raw.lower():
        return []
    try:
        parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # a parser that gives up gives no sender; the pattern still looks
        return []
    found = []
    for part in parsed.walk():
        if part.get_content_type() != "message/rfc822":
            continue
        inner = part.get_payload()
        messages = inner if isinstance(inner, list) else [inner]
        for message in messages:
            if isinstance(message, EmailMessage):
                address = _address_in(str(message.get("From", "")))
                if address:
                    found.append(address)
    return found
