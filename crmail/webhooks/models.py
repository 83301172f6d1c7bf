"""Webhook endpoints and their deliveries (decision 034, docs/events.md).

An ``Endpoint`` is a URL an administrator registered for some kinds of events, with the
secret its calls are signed with (encrypted at rest). A ``Delivery`` is one event (or a
test) for one endpoint: the payload as it is sent, every time it is sent, and how the last
attempt went.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from crmail.config.crypto import EncryptedTextField

TEST_KIND = "webhook.test"


class Endpoint(models.Model):
    url = models.URLField(max_length=2000)
    kinds = models.JSONField(default=list, help_text="The kinds of events sent to it.")
    secret = EncryptedTextField(help_text="whsec_…: the key its calls are signed with.")
    enabled = models.BooleanField(default=True)
    # Why crmail turned it off; empty while it is on or when an administrator turned it off
    # (only a reason puts the banner on administrators' pages).
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The health that decides automatic disabling: when the current run of failed attempts
    # began (null after a success), and deliveries given up since the last success.
    failing_since = models.DateTimeField(null=True, blank=True)
    given_up_in_a_row = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.url

    def wants(self, kind: str) -> bool:
        return kind in self.kinds


class State(models.TextChoices):
    PENDING = "pending", "Waiting"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed, will retry"
    GIVEN_UP = "given_up", "Given up"


class Delivery(models.Model):
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The outbox event's id (null for a test): kept as a number, so deliveries outlive the
    # pruning of events, and a repeat of the event for this endpoint is refused.
    event_id = models.PositiveBigIntegerField(null=True, blank=True)
    # A call made for something other than an outbox event (a workflow rule's "call a
    # webhook"): its own idempotency key, the webhook-id of every attempt.
    key = models.CharField(max_length=80, blank=True)
    kind = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_tried_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="delivery_once"),
            models.UniqueConstraint(
                fields=["endpoint", "key"], condition=~Q(key=""), name="delivery_key_once"
            ),
        ]
        indexes = [models.Index(fields=["state", "next_try_at"], name="delivery_due")]
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.kind} to endpoint {self.endpoint_id} ({self.state})"

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header: the same for every attempt, so a receiver can tell a
        repeat (and for every endpoint the event goes to)."""
        if self.key:
            return self.key
        return f"evt_{self.event_id}" if self.event_id is not None else f"test_{self.pk}"
