"""Acquire and renew leases atomically, in the database every worker shares."""

from __future__ import annotations

import itertools
import os
import socket
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from crmail.jobs.models import Lease


def process_identity() -> str:
    """A name for this process that stays unique across the machines of one installation."""
    return f"{socket.gethostname()}:{os.getpid()}"


_holders = itertools.count(1)


def unique_identity() -> str:
    """``process_identity`` with a suffix no other holder in this process gets: for a
    lease that must keep out the process's other threads too (a sync, a connection)."""
    return f"{process_identity()}#{next(_holders)}"


def holder_is_gone(holder: str) -> bool:
    """True when ``holder`` names a process on this machine that no longer runs.

    A holder is ``host:pid``, with ``#suffix`` when one process holds several leases alike.
    """
    host, _, pid = holder.partition("#")[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew lease ``name`` for ``holder``; True when ``holder`` now holds it.

    One UPDATE decides between competitors: it succeeds only when the lease is free,
    expired, or already ours.
    """
    now = timezone.now()
    with transaction.atomic():
        updated = Lease.objects.filter(
            Q(name=name) & (Q(holder=holder) | Q(expires_at__lt=now))
        ).update(holder=holder, expires_at=now + ttl)
        if updated:
            return True
        current = Lease.objects.filter(name=name).values_list("holder", flat=True).first()
        if current is not None:
            # A holder on this machine whose process is gone (killed, crashed) holds nothing.
            return holder_is_gone(current) and bool(
                Lease.objects.filter(name=name, holder=current).update(
                    holder=holder, expires_at=now + ttl
                )
            )
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=holder, expires_at=now + ttl)
        return True
    except IntegrityError:
        return False


def release(name: str, holder: str) -> None:
    """Give lease ``name`` up if ``holder`` holds it."""
    Lease.objects.filter(name=name, holder=holder).delete()
