"""What a user is told: a notification per message and kind, and the daily digest's choice."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Kind(models.TextChoices):
    CUSTOMER_MAIL = "customer_mail", "Customer mail"
    WORKFLOW = "workflow", "A workflow rule"
    STORAGE = "storage", "Email storage"


class Notification(models.Model):
    """One thing a user is told of, about a stored message or mail asked live, or with a
    page of crmail's to open (``link``). Unique per user, message (or live mail) and kind:
    an event handled again (at-least-once delivery) adds nothing."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.ForeignKey(
        "mail.Message",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    # Or mail crmail keeps no copy of (a mailbox in privacy mode): only its Mail ID, From
    # and received time are known, and the message is opened live.
    live_mail = models.ForeignKey(
        "mailboxes.LiveMail",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    # The record the mail came from, when the user may view it (else empty: only the
    # address is named in the title).
    module = models.CharField(max_length=10, blank=True)
    record_id = models.PositiveBigIntegerField(null=True, blank=True)
    # Or a page of crmail's (a path), for what is not about one message: the storage
    # warnings (SPEC F11).
    link = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=400)
    excerpt = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "message", "kind"], name="notification_once"),
            models.UniqueConstraint(
                fields=["user", "live_mail", "kind"],
                condition=Q(live_mail__isnull=False),
                name="notification_live_once",
            ),
            models.CheckConstraint(
                condition=Q(message__isnull=False) | Q(live_mail__isnull=False) | ~Q(link=""),
                name="notification_of_mail",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_feed"),
            # The badge: a COUNT over this index alone.
            models.Index(
                fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} (to {self.user_id})"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class DigestSetting(models.Model):
    """A user's choice of the daily digest by mail (off unless they turn it on)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="digest_setting"
    )
    daily_digest = models.BooleanField(default=False)
    last_sent_on = models.DateField(null=True, blank=True)

    def __str__(self) -> str:
        return f"digest {'on' if self.daily_digest else 'off'} for {self.user_id}"
