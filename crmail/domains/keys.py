"""DKIM keys: a fresh 2048-bit RSA key per domain and selector, and the TXT record that
publishes its public half (RFC 6376 section 3.6.1)."""

from __future__ import annotations

import base64
import secrets
import string
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.utils import timezone

KEY_BITS = 2048
_SUFFIX = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class KeyPair:
    private_pem: str  # PKCS#8 PEM, as dkimpy reads it
    public_b64: str  # the p= value: the SubjectPublicKeyInfo, DER, base64


def new_key() -> KeyPair:
    """A new RSA key of ``KEY_BITS`` bits."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private, base64.b64encode(public).decode("ascii"))


def new_selector() -> str:
    """``crmail`` and the month, and four random characters so that a domain removed and
    added again gets a name no old record answers for: ``crmail202611-k3x9``."""
    suffix = "".join(secrets.choice(_SUFFIX) for _ in range(4))
    return f"crmail{timezone.now():%Y%m}-{suffix}"


def spf_value() -> str:
    """The SPF record crmail asks a domain without one to publish ("" when no include is
    set: then any one valid record will do, and only the domain knows its servers)."""
    include = settings.CRMAIL_SPF_INCLUDE
    return f"v=spf1 include:{include} ~all" if include else ""


def record_value(public_b64: str) -> str:
    """The DKIM TXT record's value for a public key."""
    return f"v=DKIM1; k=rsa; p={public_b64}"


def zone_strings(value: str, size: int = 255) -> str:
    """``value`` as a zone file writes a long TXT record: quoted strings of at most 255
    characters each, which a resolver joins back (RFC 7208 section 3.3, RFC 6376 3.6.2.2)."""
    return " ".join(f'"{value[i : i + size]}"' for i in range(0, len(value), size))
