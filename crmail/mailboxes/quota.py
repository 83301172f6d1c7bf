"""The organisation's storage quota (SPEC F11, decision 058).

The quota is the lower of 100 GB and 5 GB per active user licence (every active user
holds one), plus the storage an administrator adds: ``CRMAIL_STORAGE_EXTRA_GB`` when the
server's configuration sets it (the storage page then shows it and cannot change it), else
the value saved on that page. Gigabytes are decimal (10^9 bytes), as the figures shown are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from crmail.mailboxes.models import StorageSetting
from crmail.people.models import User

GB = 10**9
MAX_EXTRA_GB = 100_000
# A sync asks for the quota at each batch: read again at most this often.
CACHE_SECONDS = 30.0


class QuotaError(Exception):
    """A change of the quota that cannot be made, in words."""


@dataclass(frozen=True)
class Quota:
    """The quota and how it is made up."""

    licences: int
    per_licence: int  # bytes
    ceiling: int  # bytes
    extra_gb: int
    extra_from_environment: bool

    @property
    def base(self) -> int:
        """The licences' share: the lower of the ceiling and so much per licence."""
        return min(self.ceiling, self.per_licence * self.licences)

    @property
    def extra(self) -> int:
        return self.extra_gb * GB

    @property
    def total(self) -> int:
        return self.base + self.extra


def extra_gb() -> tuple[int, bool]:
    """The gigabytes an administrator added, and whether the environment sets them."""
    configured = settings.CRMAIL_STORAGE_EXTRA_GB
    if configured is not None:
        return int(configured), True
    row = StorageSetting.objects.order_by("pk").first()
    return (row.extra_gb if row else 0), False


def current() -> Quota:
    """The quota now (two small queries)."""
    extra, from_env = extra_gb()
    return Quota(
        licences=User.objects.filter(is_active=True).count(),
        per_licence=int(settings.STORAGE_BYTES_PER_LICENCE),
        ceiling=int(settings.STORAGE_CEILING_BYTES),
        extra_gb=extra,
        extra_from_environment=from_env,
    )


_cached: tuple[float, tuple[object, ...], int] | None = None


def total_bytes() -> int:
    """``current().total``, read again at most every ``CACHE_SECONDS`` in one process
    (and at once when the settings that make it change)."""
    global _cached
    key = (
        settings.STORAGE_BYTES_PER_LICENCE,
        settings.STORAGE_CEILING_BYTES,
        settings.CRMAIL_STORAGE_EXTRA_GB,
    )
    now = time.monotonic()
    if _cached is not None and _cached[1] == key and now - _cached[0] < CACHE_SECONDS:
        return _cached[2]
    total = current().total
    _cached = (now, key, total)
    return total


def forget() -> None:
    """Drop this process's cached quota (it changed)."""
    global _cached
    _cached = None


def set_extra_gb(actor: User, gigabytes: int) -> Quota:
    """Set the storage added to the quota on the storage page; administrators only, and not
    while ``CRMAIL_STORAGE_EXTRA_GB`` sets it."""
    if not actor.is_admin:
        raise QuotaError("Only administrators add storage.")
    if settings.CRMAIL_STORAGE_EXTRA_GB is not None:
        raise QuotaError(
            "The server's configuration sets the storage added (CRMAIL_STORAGE_EXTRA_GB): "
            "change it there."
        )
    if not 0 <= gigabytes <= MAX_EXTRA_GB:
        raise QuotaError(f"Add between 0 and {MAX_EXTRA_GB:,} GB.")
    with transaction.atomic():
        row = StorageSetting.objects.select_for_update().order_by("pk").first()
        if row is None:
            row = StorageSetting()
        row.extra_gb = gigabytes
        row.changed_at = timezone.now()
        row.changed_by = actor
        row.save()
    forget()
    return current()
