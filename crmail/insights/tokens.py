"""The tokens in tracked mail's pixel and links: what they say, signed by crmail.

A token is base64url (no padding) of ``payload + mac``:

- payload: a version byte, the kind (``o`` an open, ``c`` a click), the message's random
  key (``MessageInsight.key``, 12 bytes), and for a click the link's index (2 bytes) and
  the URL it leads to (UTF-8);
- mac: HMAC-SHA256 of the payload, under a key derived from ``SECRET_KEY`` (and each of
  ``SECRET_KEY_FALLBACKS``), its first 16 bytes.

Checking computes the MAC whatever the input (garbage too) and compares in constant time
(``hmac.compare_digest``), so the time a check takes says nothing about how much of a
forged token was right. A click's URL is the one signed into its token: the click
endpoint redirects there and nowhere else, and only to an absolute http(s) address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from django.conf import settings

VERSION = 1
KEY_BYTES = 12
MAC_BYTES = 16
MAX_URL = 2000  # longer links go out untracked
MAX_TOKEN = 4 * (2 + KEY_BYTES + 2 + MAX_URL * 4 + MAC_BYTES) // 3 + 4
_CONTEXT = b"crmail.insights.tracking.v1"
_DUMMY = b"\x00" * 32

Kind = Literal["o", "c"]


@dataclass(frozen=True)
class Token:
    kind: Kind
    key: str  # MessageInsight.key
    link: int = 0  # a click's link index
    url: str = ""  # a click's destination


def new_key() -> str:
    """A message's random key (the text form kept in ``MessageInsight.key``)."""
    return _b64(secrets.token_bytes(KEY_BYTES))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signing_keys() -> list[bytes]:
    secrets_ = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [hmac.new(s.encode(), _CONTEXT, hashlib.sha256).digest() for s in secrets_]


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:MAC_BYTES]


def safe_destination(url: str) -> bool:
    """True for an address a click may be sent on to: absolute http or https with a host,
    no whitespace or control characters, not too long."""
    if (
        not url
        or len(url) > MAX_URL
        or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url)
    ):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a bad port raises)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "\\" not in url


def make(kind: Kind, key: str, *, link: int = 0, url: str = "") -> str:
    """The token of ``kind`` for the message of ``key`` (a click: its link and URL)."""
    payload = bytes([VERSION]) + kind.encode() + _unb64(key)
    if kind == "c":
        if not safe_destination(url):
            raise ValueError("only absolute http(s) addresses are tracked")
        payload += struct.pack(">H", link) + url.encode("utf-8")
    return _b64(payload + _mac(_signing_keys()[0], payload))


def read(token: str) -> Token | None:
    """What ``token`` says when crmail signed it; None for anything else (forged, altered,
    cut short, too long, not base64), after the same work."""
    raw = b""
    if len(token) <= MAX_TOKEN:
        try:
            raw = _unb64(token)
        except (binascii.Error, ValueError):
            raw = b""
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    good = False
    for signing_key in _signing_keys():
        # Every key is tried, garbage too: the time depends on the length, not the content.
        expected = _mac(signing_key, payload) if len(raw) > MAC_BYTES else _mac(_DUMMY, raw)
        good |= hmac.compare_digest(expected, mac) and len(raw) > MAC_BYTES
    if not good:
        return None
    return _parse(payload)


def _parse(payload: bytes) -> Token | None:
    head = 2 + KEY_BYTES
    if len(payload) < head or payload[0] != VERSION:
        return None
    kind, key = payload[1:2], _b64(payload[2:head])
    if kind == b"o" and len(payload) == head:
        return Token("o", key)
    if kind == b"c" and len(payload) > head + 2:
        (link,) = struct.unpack(">H", payload[head : head + 2])
        try:
            url = payload[head + 2 :].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return Token("c", key, link, url) if safe_destination(url) else None
    return None
