"""DKIM signatures on mail crmail sends from an authenticated domain (dkimpy, RFC 6376).

``sign(sender, raw)`` is the one call the sending code makes, for SMTP and the mail APIs
alike: the bytes it returns are the bytes that go out and the bytes crmail stores. Mail
from an address at a domain that is not authenticated comes back unchanged.
"""

from __future__ import annotations

import logging

from crmail.config.crypto import SecretUnreadable
from crmail.domains.models import Domain, State
from crmail.domains.names import domain_of

log = logging.getLogger(__name__)

# Relaxed for headers and body: a relay that re-folds a header or trims trailing spaces
# leaves the signature valid (RFC 6376 section 3.4).
CANONICALIZE = (b"relaxed", b"relaxed")


def signing_domain(sender: str) -> Domain | None:
    """The authenticated domain whose key signs mail from ``sender``: its own domain's,
    exactly (``d=`` is then the From domain: aligned for DMARC, strict or relaxed)."""
    name = domain_of(sender)
    if not name:
        return None
    return Domain.objects.filter(name=name, state=State.AUTHENTICATED).first()


def sign_with(domain: Domain, raw: bytes) -> bytes:
    """``raw`` with a DKIM-Signature header of ``domain`` on top; raises ``dkim.DKIMException``
    or ``SecretUnreadable``. The headers signed are those RFC 6376 recommends that the
    message has (From once more, so none can be added); never Bcc."""
    import dkim  # dnspython with it: only where a domain is authenticated

    signature = dkim.sign(
        raw,
        domain.selector.encode("ascii"),
        domain.name.encode("ascii"),
        domain.private_key.encode("ascii"),
        canonicalize=CANONICALIZE,
    )
    return bytes(signature) + raw


def sign(sender: str, raw: bytes) -> bytes:
    """``raw`` signed by ``sender``'s domain when it is authenticated, else unchanged. A key
    that cannot be used is logged and the mail goes out unsigned: a signature is worth less
    than the mail itself."""
    domain = signing_domain(sender)
    if domain is None:
        return raw
    import dkim

    try:
        return sign_with(domain, raw)
    except (dkim.DKIMException, SecretUnreadable) as exc:
        log.warning("mail from %s went out without a DKIM signature: %s", domain.name, exc)
        return raw
