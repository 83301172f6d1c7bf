"""Changing the storage quota (SPEC F11): the storage an administrator adds. Once it
grows, the warnings are checked again and the bodies that wait are fetched."""

from __future__ import annotations

from crmail.mailboxes import quota
from crmail.people.models import User
from crmail.storage import thresholds


def set_extra_gb(actor: User, gigabytes: int) -> quota.Quota:
    """Set the gigabytes added to the quota (administrators; ``quota.QuotaError`` in
    words otherwise)."""
    from crmail.storage.tasks import fetch_soon

    before = quota.current().total
    changed = quota.set_extra_gb(actor, gigabytes)
    thresholds.check()
    if changed.total > before:
        fetch_soon()
    return changed
