"""Codes mailed to an address to prove its owner reads mail there (SPEC F10, F16).

``send_code`` mails a six-digit code through crmail's own mail (``mail.system``) and keeps
only its HMAC; ``confirm`` checks what the user typed. A code lasts ``LIFETIME``; after
``MAX_ATTEMPTS`` wrong tries it is used up; a new one may be asked for after
``RESEND_AFTER``. Every refusal is a ``VerificationError`` whose message says what to do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from crmail.mail import system
from crmail.mail.models import VerificationCode

LIFETIME = timedelta(hours=24)
RESEND_AFTER = timedelta(minutes=1)
MAX_ATTEMPTS = 5
DIGITS = 6


class VerificationError(Exception):
    """The code was not sent or not accepted; the message says why and what to do."""


def _digest(purpose: str, key: str, code: str) -> str:
    message = f"{purpose}\0{key}\0{code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _normalized(typed: str) -> str:
    return "".join(ch for ch in typed if ch.isdigit())


def send_code(purpose: str, key: str, address: str, *, what: str) -> VerificationCode:
    """Mail a fresh code for ``key`` to ``address``; ``what`` names it for the reader
    ("the domain example.com"). Replaces an earlier code. Raises ``VerificationError``."""
    now = timezone.now()
    earlier = VerificationCode.objects.filter(purpose=purpose, key=key).first()
    if earlier and earlier.confirmed_at is None and now - earlier.created_at < RESEND_AFTER:
        wait = int((earlier.created_at + RESEND_AFTER - now).total_seconds()) + 1
        raise VerificationError(f"A code was sent to {earlier.address} just now; wait {wait} s.")
    code = f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
    with transaction.atomic():
        VerificationCode.objects.filter(purpose=purpose, key=key).delete()
        row = VerificationCode.objects.create(
            purpose=purpose,
            key=key,
            address=address,
            code_hash=_digest(purpose, key, code),
            expires_at=now + LIFETIME,
        )
    spaced = f"{code[:3]} {code[3:]}"
    try:
        system.send(
            address,
            f"crmail verification code: {spaced}",
            f"Your crmail verification code for {what} is {spaced}.\n\n"
            f"Enter it in crmail within {int(LIFETIME.total_seconds() // 3600)} hours. "
            "If you did not expect this message, you can ignore it: nothing changes "
            "until the code is entered.\n",
        )
    except system.SystemMailError as exc:
        row.delete()
        raise VerificationError(f"The code could not be mailed to {address}: {exc}") from None
    return row


def confirm(purpose: str, key: str, typed: str) -> VerificationCode:
    """Accept ``typed`` as the code for ``key``, or raise ``VerificationError``."""
    with transaction.atomic():  # a wrong try is counted even though it is refused
        row = (
            VerificationCode.objects.select_for_update()
            .filter(purpose=purpose, key=key, confirmed_at__isnull=True)
            .first()
        )
        refusal = _refusal(row, purpose, key, typed)
    if refusal:
        raise VerificationError(refusal)
    assert row is not None
    return row


def _refusal(row: VerificationCode | None, purpose: str, key: str, typed: str) -> str:
    """Why ``typed`` is refused ("" when it is right, and the code is then used)."""
    if row is None:
        return "No code is waiting: send one first."
    if timezone.now() >= row.expires_at:
        return "The code has expired: send a new one."
    if row.attempts >= MAX_ATTEMPTS:
        return "Too many wrong codes: send a new one."
    if hmac.compare_digest(row.code_hash, _digest(purpose, key, _normalized(typed))):
        row.confirmed_at = timezone.now()
        row.save(update_fields=["confirmed_at"])
        return ""
    row.attempts += 1
    row.save(update_fields=["attempts"])
    left = MAX_ATTEMPTS - row.attempts
    if left <= 0:
        return "That code is not right, and no tries are left: send a new one."
    return f"That code is not right ({left} {'try' if left == 1 else 'tries'} left)."


def waiting(purpose: str, key: str) -> VerificationCode | None:
    """The code sent for ``key`` and not yet entered, if any (to say where it went)."""
    return VerificationCode.objects.filter(
        purpose=purpose, key=key, confirmed_at__isnull=True, expires_at__gt=timezone.now()
    ).first()
