"""The writers of a user's dropbox settings: a new address, the forwarding pattern."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from crmail.dropbox import addresses, patterns
from crmail.dropbox.models import DropboxAddress, DropboxSetting
from crmail.people.models import User


def regenerate(user: User) -> DropboxAddress:
    """A new dropbox address for ``user``; the one before is retired: mail to it is
    refused from now on."""
    with transaction.atomic():
        DropboxAddress.objects.select_for_update().filter(
            user=user, retired_at__isnull=True
        ).update(retired_at=timezone.now())
        return DropboxAddress.objects.create(user=user, local_part=addresses.new_local_part())


def set_pattern(user: User, pattern: str) -> str:
    """Save ``user``'s pattern for forwarded conversations (empty: the default); raises
    ``patterns.BadPattern`` saying why a pattern cannot be used. Returns it as saved."""
    checked = patterns.check(pattern)
    DropboxSetting.objects.update_or_create(user=user, defaults={"forward_pattern": checked})
    return checked
