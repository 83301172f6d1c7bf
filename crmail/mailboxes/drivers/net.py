"""What every mail protocol client shares: TLS contexts and OAuth 2 SASL strings."""

from __future__ import annotations

import ssl


def tls_context(*, allow_self_signed: bool = False, cafile: str | None = None) -> ssl.SSLContext:
    """A client context verifying certificates and host names against the system CAs.

    ``allow_self_signed`` (a per-mailbox choice the user makes for a self-hosted server)
    still encrypts, but accepts any certificate.
    """
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if allow_self_signed:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (Google's and Microsoft's documented format)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"
