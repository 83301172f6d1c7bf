"""What the IDLE watcher reads and writes in the database, in batches, off its event loop.

Every function here is synchronous Django code, run in one of the watcher's threads
(never on the event loop). Leases are ``jobs.Lease`` rows like every other lease, but
taken and renewed for many mailboxes per query: a watcher with a thousand mailboxes
renews them with one UPDATE per tick, not one query per mailbox.

Lease names: ``mailbox-watch:<id>`` says which process watches a mailbox;
``mailbox-watcher:<hash of holder>`` says that a watcher is alive, so that the others
can compute their fair share of the mailboxes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import close_old_connections, connection
from django.utils import timezone

from crmail.jobs import leases
from crmail.jobs.models import Lease
from crmail.mailboxes.connect import imap_config, is_watched, protocols_that
from crmail.mailboxes.drivers.base import DriverError, WaitsForNews
from crmail.mailboxes.drivers.imap_session import ImapConfig
from crmail.mailboxes.models import AuthMethod, Folder, Mailbox
from crmail.mailboxes.sync import failure_state, record_state

log = logging.getLogger(__name__)

WATCH_PREFIX = "mailbox-watch:"
PRESENCE_PREFIX = "mailbox-watcher:"
CHUNK = 500  # names per IN (...) list
# Seconds an IMAP command of the watcher may take; also its connect timeout.
COMMAND_TIMEOUT = 30.0

T = TypeVar("T")


def watch_lease(mailbox_id: int) -> str:
    return f"{WATCH_PREFIX}{mailbox_id}"


def presence_lease(holder: str) -> str:
    return PRESENCE_PREFIX + hashlib.sha256(holder.encode()).hexdigest()[:24]


def _mailbox_id(name: str) -> int:
    return int(name[len(WATCH_PREFIX) :])


@contextmanager
def db_job() -> Iterator[None]:
    """Around each piece of database work in a watcher thread (like a request's ends)."""
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()


def run_closing(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a pool thread that may not come back soon: close its connection."""
    try:
        with db_job():
            return fn(*args)
    finally:
        connection.close()


def close_connection() -> None:
    """Close this thread's database connection (the control thread, at the end)."""
    connection.close()


# -- what to watch ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A mailbox to watch, as the last scan found it."""

    pk: int
    config: ImapConfig  # no token: an OAuth 2 token is fetched at each connect
    oauth: bool
    fingerprint: str  # changes with any setting that decides how to log in


def watch_targets() -> dict[int, Target]:
    """Active mailboxes of active users whose driver waits for news (IMAP IDLE) and whose
    provider allows a second connection."""
    rows = (
        Mailbox.objects.filter(
            is_active=True, owner__is_active=True, protocol__in=protocols_that(WaitsForNews)
        )
        .exclude(host="")
        .only(
            "pk",
            "protocol",
            "provider",
            "host",
            "port",
            "security",
            "allow_self_signed",
            "auth_method",
            "login",
            "secret",
        )
    )
    targets: dict[int, Target] = {}
    for m in rows:
        # The watcher holds one connection while syncs open another.
        if not is_watched(m):
            continue
        oauth = m.auth_method == AuthMethod.OAUTH2
        try:
            config = imap_config(m, password="" if oauth else m.secret, timeout=COMMAND_TIMEOUT)
        except ValueError:
            continue  # an unknown security setting: the sync reports it
        fields = (m.provider, m.host, m.port, m.security, m.allow_self_signed, m.auth_method)
        secret = hashlib.sha256(f"{fields!r}\0{m.login}\0{m.secret}".encode()).hexdigest()
        targets[m.pk] = Target(m.pk, config, oauth, secret)
    return targets


def inbox_cursor(mailbox_id: int) -> dict[str, Any] | None:
    """The stored sync cursor of the mailbox's Inbox (None before its first sync)."""
    with db_job():
        cursor = (
            Folder.objects.filter(mailbox_id=mailbox_id, remote_id="INBOX")
            .values_list("cursor", flat=True)
            .first()
        )
    return cursor or None


def oauth_token(mailbox_id: int, *, renew: bool = False) -> str:
    """An access token for the mailbox (renewed first when the server refused the last)."""
    from crmail.mailboxes.oauth import access_token, forget_access_token

    with db_job():
        mailbox = Mailbox.objects.get(pk=mailbox_id)
        if renew:
            forget_access_token(mailbox)
            mailbox.refresh_from_db(fields=["access_token", "access_token_expires_at", "state"])
        return access_token(mailbox)


def record_login_failure(mailbox_id: int, exc: DriverError) -> None:
    """The watcher could not log in: say so on the mailbox, as a failed sync does."""
    with db_job():
        mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
        if mailbox is not None:
            record_state(mailbox, failure_state(exc), str(exc), exc.kind or "")


# -- leases -------------------------------------------------------------------------------------


@dataclass
class Claim:
    """The outcome of one tick: what to watch now."""

    targets: dict[int, Target]
    mine: set[int]  # mailboxes whose watch lease this process holds
    peers: int  # other live watchers


def claim(holder: str, ttl: timedelta, *, balance: bool = True) -> Claim:
    """One tick: renew this watcher's leases, give up those of mailboxes gone, take free ones.

    A watcher takes at most its fair share (the targets divided among the live watchers,
    rounded up) and gives up what it holds beyond it, so a watcher that joins gets work
    and one that dies leaves work that the others' shares now cover.
    """
    with db_job():
        now = timezone.now()
        targets = watch_targets()
        held = renew(holder, ttl, now)
        gone = [watch_lease(pk) for pk in held - set(targets)]
        if gone:
            release(holder, gone)
        mine = held & set(targets)
        peers = _live_peers(holder, now)
        share = math.ceil(len(targets) / (peers + 1)) if balance else len(targets)
        if len(mine) > share:
            extra = sorted(mine)[share:]
            release(holder, [watch_lease(pk) for pk in extra])
            mine -= set(extra)
        elif len(mine) < share:
            free = _free([watch_lease(pk) for pk in targets if pk not in mine], holder, now)
            random.shuffle(free)  # two watchers starting together split the list
            mine |= _take(holder, free[: share - len(mine)], now + ttl, now)
        return Claim(targets, mine, peers)


def renew(holder: str, ttl: timedelta, now: datetime | None = None) -> set[int]:
    """Extend every lease ``holder`` has (watches and presence) in one UPDATE.

    Returns the mailboxes it still watches: a lease that expired and that another watcher
    took meanwhile is no longer ours. The presence lease is created on the first call.
    """
    now = now or timezone.now()
    Lease.objects.filter(holder=holder, name__startswith="mailbox-watch").update(
        expires_at=now + ttl
    )
    leases.acquire(presence_lease(holder), holder, ttl)
    names = Lease.objects.filter(holder=holder, name__startswith=WATCH_PREFIX).values_list(
        "name", flat=True
    )
    return {_mailbox_id(n) for n in names}


def release(holder: str, names: Iterable[str] | None = None) -> None:
    """Give up some watch leases, or with no names every lease of the watcher."""
    if names is None:
        Lease.objects.filter(holder=holder, name__startswith="mailbox-watch").delete()
        return
    names = list(names)
    for start in range(0, len(names), CHUNK):
        Lease.objects.filter(holder=holder, name__in=names[start : start + CHUNK]).delete()


def _live_peers(holder: str, now: datetime) -> int:
    others = set(
        Lease.objects.filter(name__startswith=PRESENCE_PREFIX, expires_at__gte=now)
        .exclude(holder=holder)
        .values_list("holder", flat=True)
    )
    return sum(1 for h in others if not leases.holder_is_gone(h))


def _free(names: list[str], holder: str, now: datetime) -> list[str]:
    """Names nobody holds: no row, expired, or held by a process of this machine now gone."""
    gone: dict[str, bool] = {}
    free: list[str] = []
    for start in range(0, len(names), CHUNK):
        chunk = names[start : start + CHUNK]
        rows = dict(
            (name, (who, until))
            for name, who, until in Lease.objects.filter(name__in=chunk).values_list(
                "name", "holder", "expires_at"
            )
        )
        for name in chunk:
            row = rows.get(name)
            if row is None or row[1] < now or row[0] == holder:
                free.append(name)
            else:
                if row[0] not in gone:
                    gone[row[0]] = leases.holder_is_gone(row[0])
                if gone[row[0]]:
                    free.append(name)
    return free


def _take(holder: str, names: list[str], until: datetime, now: datetime) -> set[int]:
    """Take the free ones among ``names``; conditional UPDATEs decide between competitors.

    On PostgreSQL a competitor's UPDATE of the same row waits for ours, then finds the
    row no longer expired and leaves it; the unique name settles two INSERTs.
    """
    mine: set[int] = set()
    for start in range(0, len(names), CHUNK):
        chunk = names[start : start + CHUNK]
        Lease.objects.filter(name__in=chunk, expires_at__lt=now).update(
            holder=holder, expires_at=until
        )
        rows = dict(Lease.objects.filter(name__in=chunk).values_list("name", "holder"))
        for other in {h for h in rows.values() if h != holder}:
            if leases.holder_is_gone(other):
                Lease.objects.filter(name__in=chunk, holder=other).update(
                    holder=holder, expires_at=until
                )
        missing = [n for n in chunk if n not in rows]
        if missing:
            Lease.objects.bulk_create(
                [Lease(name=n, holder=holder, expires_at=until) for n in missing],
                ignore_conflicts=True,
            )
        mine.update(
            _mailbox_id(n)
            for n in Lease.objects.filter(name__in=chunk, holder=holder).values_list(
                "name", flat=True
            )
        )
    return mine
