"""The writers of a user's dropbox settings: a new address, the forwarding pattern."""

from __future__ import annotations

from crmail.dropbox import addresses, patterns
from crmail.dropbox.models import DropboxAddress, DropboxSetting
from crmail.people.models import User


def regenerate(user: User) -> DropboxAddress:
    """A new dropbox address for ``user``; mail to the one before is refused from now on."""
    return addresses.regenerate(user)


def set_pattern(user: User, pattern: str) -> str:
    """Save ``user``'s pattern for forwarded conversations (empty: the default); raises
    ``patterns.BadPattern`` saying why a pattern cannot be used. Returns it as saved."""
    checked = patterns.check(pattern)
    DropboxSetting.objects.update_or_create(user=user, defaults={"forward_pattern": checked})
    return checked
