"""The BCC Dropbox (SPEC F6, decision 052): each user's address, the mail it received, and
what it refused.

- ``DropboxAddress``: a random local part at ``CRMAIL_DROPBOX_DOMAIN``; a user has one
  current address, and every address they had before stays as a retired row so that mail
  to it is refused in words (550 5.1.1) rather than as unknown.
- ``DropboxSetting``: the user's pattern for finding the original correspondent in a
  forwarded conversation (empty: the first ``From:`` line of the forwarded part).
- ``Delivery``: one message received for one user, beside the ``SentMessage`` row (source
  "BCC Dropbox") that shares it as mail sent from crmail; how it was filed, once it was.
- ``Refusal``: mail the receiver refused and why, for administrators (``/settings/dropbox/``,
  ``crmail dropbox refusals``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class DropboxAddress(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dropbox_addresses"
    )
    local_part = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(retired_at__isnull=True), name="one_current_dropbox"
            ),
        ]

    def __str__(self) -> str:
        return self.local_part


class DropboxSetting(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dropbox_setting"
    )
    forward_pattern = models.CharField(
        max_length=500,
        blank=True,
        help_text="A regular expression finding the original correspondent in a forwarded "
        "conversation; empty: the first From: line of the forwarded part.",
    )

    def __str__(self) -> str:
        return f"dropbox setting of {self.user_id}"


class FiledAs(models.TextChoices):
    DEAL = "deal", "On the contact's deal"
    CONTACT = "contact", "On the contact"
    LEAD = "lead", "On the lead"
    UNKNOWN = "unknown", "No lead or contact has the correspondent's address"
    NO_CORRESPONDENT = "none", "No correspondent found"


class Delivery(models.Model):
    """A message that reached a user's dropbox: stored before the receiver said 250."""

    sent = models.OneToOneField(
        "mailboxes.SentMessage", on_delete=models.CASCADE, related_name="dropbox_delivery"
    )
    address = models.ForeignKey(
        DropboxAddress, null=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    envelope_from = models.CharField(max_length=254, blank=True)
    peer = models.CharField(max_length=100, blank=True, help_text="The client's address.")
    received_at = models.DateTimeField(auto_now_add=True)
    filed_at = models.DateTimeField(null=True, blank=True)
    filed_as = models.CharField(max_length=10, choices=FiledAs.choices, blank=True)
    correspondent = models.CharField(
        max_length=254, blank=True, help_text="The address it was filed by."
    )
    forwarded = models.BooleanField(
        default=False, help_text="The correspondent was found in a forwarded conversation."
    )
    record_module = models.CharField(max_length=20, blank=True)
    record_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [
            models.Index(
                fields=["received_at"], name="dropbox_unfiled", condition=Q(filed_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"dropbox delivery {self.pk}"


class Stage(models.TextChoices):
    CONNECT = "connect", "Connection"
    MAIL = "mail", "MAIL FROM"
    RCPT = "rcpt", "RCPT TO"
    DATA = "data", "DATA"


class Refusal(models.Model):
    """Mail the dropbox receiver refused: who tried, to which address, and why in words."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    stage = models.CharField(max_length=10, choices=Stage.choices)
    peer = models.CharField(max_length=100, blank=True)
    envelope_from = models.CharField(max_length=254, blank=True)
    header_from = models.CharField(max_length=254, blank=True)
    recipient = models.CharField(max_length=254, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The owner of the dropbox address, when it is one.",
    )
    reply = models.CharField(max_length=300, help_text="The SMTP reply the client was given.")

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.stage}: {self.reply}"
