"""Organisation addresses (SPEC F16, decision 055): shared addresses such as sales@ that
administrators add, prove by a code mailed to them, and allow to profiles; users whose
profile is allowed send as them (From) or ask for replies there (Reply-To) through their
own mailbox.

- ``address``: lower case, unique. Changing it clears ``verified_at``: the new address is
  proved again before anyone sends as it.
- ``name``: the name mail sent as it carries ("Acme Sales"); empty: the sender's own.
- ``everyone``: every user may send as it; otherwise the users of ``profiles`` (and
  administrators, who may use every verified address).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from crmail.people.models import Profile


class OrganisationAddress(models.Model):
    address = models.EmailField(unique=True, help_text="Lower case; proved by a mailed code.")
    name = models.CharField(
        max_length=200, blank=True, help_text="The name mail sent as it carries."
    )
    verified_at = models.DateTimeField(
        null=True, blank=True, help_text="When its code was entered; empty: not usable."
    )
    everyone = models.BooleanField(default=False, help_text="Every user may send as it.")
    profiles = models.ManyToManyField(
        Profile,
        blank=True,
        related_name="organisation_addresses",
        help_text="The profiles whose users may send as it (administrators always may).",
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]

    def __str__(self) -> str:
        return self.address

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    def display(self) -> str:
        """``Name <address>``, or the address alone."""
        return f"{self.name} <{self.address}>" if self.name else self.address
