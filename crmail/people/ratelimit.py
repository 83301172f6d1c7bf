"""Sign-in rate limiting: failures are counted per client address and per account.

Failures are kept as ``LoginFailure`` rows whose keys are keyed hashes (HMAC with the
secret key) of the account's address and of the client's IP, so the table never holds
either in a form that can be reversed by guessing. An IPv6 client is known by its /64
network, the block one subscriber is usually given.

Within ``CRMAIL_LOGIN_WINDOW_SECONDS``, a client address may fail
``CRMAIL_LOGIN_MAX_FAILURES`` times and an account ``CRMAIL_LOGIN_MAX_ACCOUNT_FAILURES``
times (from all addresses together). The per-address limit stops one attacker trying
many accounts without locking anyone else out; the larger per-account limit stops many
addresses attacking one account.

Each attempt first *reserves* its place (``reserve``): it inserts its failure row,
committed, and only then counts the rows in the window. Of attempts racing each other,
the one whose row commits j-th sees at least j rows, so no more than the limit are ever
let through to the password check, however many arrive at once; the others delete their
row and are refused without checking the password, and are not counted, so a lock never
outlasts the window after the last real failure. A password that proves right deletes
the row again, with that client's earlier failures for that account. Because the row
must be visible to concurrent attempts before they count, ``reserve`` is called outside
any transaction (the sign-in views are not wrapped in one).

Every password check goes through ``crmail.people.backends.RateLimitedBackend``, which
uses this module.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from crmail.people.models import LoginFailure


class SignInLocked(Exception):
    """Too many failures: the attempt was refused without checking the password."""

    def __init__(self, seconds: int, *, account: bool) -> None:
        self.seconds = seconds
        self.account = account
        super().__init__(lock_message(seconds, account=account))

    @property
    def message(self) -> str:
        return str(self)


def _key(kind: str, value: str) -> str:
    return salted_hmac(f"crmail.signin.{kind}", value, algorithm="sha256").hexdigest()


def account_key(email: str) -> str:
    return _key("account", (email or "").strip().lower())


def client_network(client: str) -> str:
    """The address a client is counted by: IPv4 as it is, IPv6 as its /64 network."""
    raw = (client or "").strip()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def client_key(client: str) -> str:
    return _key("client", client_network(client))


def _window() -> timedelta:
    return timedelta(seconds=settings.CRMAIL_LOGIN_WINDOW_SECONDS)


@dataclass
class Attempt:
    """A reserved attempt: its row stays as the failure unless the password proves right."""

    account_key: str
    client_key: str

    def succeeded(self) -> None:
        """The password was right: this attempt and the client's failures on the account go."""
        mine = LoginFailure.objects.filter(account_key=self.account_key, client_key=self.client_key)
        mine.delete()


def _limits() -> tuple[int, int]:
    return settings.CRMAIL_LOGIN_MAX_FAILURES, settings.CRMAIL_LOGIN_MAX_ACCOUNT_FAILURES


def _unlocks_in(times: list[datetime], limit: int, now: datetime) -> int:
    """Seconds until fewer than ``limit`` of ``times`` (newest first) are in the window."""
    if limit <= 0 or len(times) < limit:
        return 0
    # Free again when the limit-th most recent failure leaves the window.
    return max(1, math.ceil((times[limit - 1] + _window() - now).total_seconds()))


def _recent(field: str, key: str, since: datetime, limit: int) -> list[datetime]:
    """The times of the ``limit`` newest failures for ``key`` in the window."""
    if limit <= 0:
        return []
    rows = LoginFailure.objects.filter(**{field: key}, at__gt=since).order_by("-at")
    return list(rows.values_list("at", flat=True)[:limit])


def reserve(email: str, client: str) -> Attempt:
    """Take a place for one password check, or raise ``SignInLocked`` (nothing counted)."""
    client_limit, account_limit = _limits()
    now = timezone.now()
    LoginFailure.objects.filter(at__lte=now - _window()).delete()
    row = LoginFailure.objects.create(
        account_key=account_key(email), client_key=client_key(client), at=now
    )
    since = now - _window()
    # Both counts from one statement, so they see the same moment.
    mine_client, mine_account = Q(client_key=row.client_key), Q(account_key=row.account_key)
    counts = LoginFailure.objects.filter(mine_client | mine_account, at__gt=since).aggregate(
        client=Count("pk", filter=mine_client), account=Count("pk", filter=mine_account)
    )
    client_count, account_count = counts["client"], counts["account"]
    over_client = client_limit > 0 and client_count > client_limit
    over_account = account_limit > 0 and account_count > account_limit
    if not (over_client or over_account):
        return Attempt(row.account_key, row.client_key)
    LoginFailure.objects.filter(pk=row.pk).delete()
    recent_client = _recent("client_key", row.client_key, since, client_limit)
    recent_account = _recent("account_key", row.account_key, since, account_limit)
    wait_client = _unlocks_in(recent_client, client_limit, now)
    wait_account = _unlocks_in(recent_account, account_limit, now)
    # Racing attempts may each have seen the other's row: at least a second, then.
    seconds = max(wait_client, wait_account, 1)
    # The address's own lock is named when there is one: it is what that client can change.
    raise SignInLocked(seconds, account=not over_client)


def wait_words(seconds: int) -> str:
    """How long until a lock lifts, in whole minutes: "1 minute", "15 minutes"."""
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} {'minute' if minutes == 1 else 'minutes'}"


def lock_message(seconds: int, *, account: bool = False) -> str:
    where = "to this account" if account else "from your network address"
    return f"Too many failed sign-ins {where}; try again in {wait_words(seconds)}."
