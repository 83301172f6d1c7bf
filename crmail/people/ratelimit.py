"""Sign-in rate limiting: too many failures for one address or one client lock it out.

Failures are kept as ``LoginFailure`` rows whose keys are keyed hashes (HMAC with the
secret key) of the address and of the client's IP, so the table never holds either in a
form that can be reversed by guessing. Within ``CRMAIL_LOGIN_WINDOW_SECONDS``, reaching
``CRMAIL_LOGIN_MAX_FAILURES`` for the address or for the client refuses further attempts
without checking the password, until the oldest of those failures leaves the window.
Refused attempts are not counted, so a lock never outlasts the window after the last real
failure. A successful sign-in clears the failures for that address.

Any way of signing in with a password (the web sign-in page today) goes through here.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

from crmail.people.models import LoginFailure


def _key(kind: str, value: str) -> str:
    return salted_hmac(f"crmail.signin.{kind}", value, algorithm="sha256").hexdigest()


def account_key(email: str) -> str:
    return _key("account", (email or "").strip().lower())


def client_key(client: str) -> str:
    return _key("client", (client or "").strip())


def _window() -> timedelta:
    return timedelta(seconds=settings.CRMAIL_LOGIN_WINDOW_SECONDS)


def locked_seconds(email: str, client: str) -> int:
    """Seconds until ``email`` and ``client`` may try again; 0 when they may now."""
    limit = settings.CRMAIL_LOGIN_MAX_FAILURES
    if limit <= 0:
        return 0
    now = timezone.now()
    since = now - _window()
    longest = 0.0
    for field, key in (("account_key", account_key(email)), ("client_key", client_key(client))):
        times = list(
            LoginFailure.objects.filter(**{field: key}, at__gt=since)
            .order_by("-at")
            .values_list("at", flat=True)[:limit]
        )
        if len(times) >= limit:
            # Unlocked when the limit-th most recent failure leaves the window.
            longest = max(longest, (times[-1] + _window() - now).total_seconds())
    return math.ceil(longest) if longest > 0 else 0


def record_failure(email: str, client: str) -> None:
    """Count a failed attempt, and forget failures that have left the window."""
    now = timezone.now()
    LoginFailure.objects.filter(at__lte=now - _window()).delete()
    LoginFailure.objects.create(account_key=account_key(email), client_key=client_key(client))


def clear(email: str) -> None:
    """Forget the failures for ``email`` (after it signed in)."""
    LoginFailure.objects.filter(account_key=account_key(email)).delete()


def lock_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed sign-ins; try again in {minutes} {unit}."
