"""The outbox: what happened, in the order it committed, and how far each consumer is.

Writers add an ``Event`` in their own transaction (``outbox.record``), so an event exists
exactly when what it tells of does. Its ``position`` is given after the commit by one
sequencer at a time (``dispatch.sequence``): positions grow in commit order with no gaps,
so a consumer that has handled everything up to its position has missed nothing, however
the writers' transactions interleaved (ids alone would not say that on PostgreSQL).
"""

from __future__ import annotations

from django.db import models


class Event(models.Model):
    kind = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    position = models.PositiveBigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"], name="event_unsequenced", condition=models.Q(position__isnull=True)
            ),
            models.Index(fields=["created_at"], name="event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.position or '-'} ({self.pk})"


class Sequencer(models.Model):
    """One row: the last position given. Locking it makes one sequencer at a time."""

    last_position = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"last position {self.last_position}"


class ConsumerState(models.Model):
    """A consumer's place in the outbox: every event up to ``position`` is handled (or, after
    failing, waits in ``Failure``)."""

    name = models.CharField(max_length=60, unique=True)
    position = models.PositiveBigIntegerField(default=0)
    handled = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.position}"


class Failure(models.Model):
    """An event a consumer's handler raised on: retried with backoff, then parked for an
    administrator (``/settings/events/``, ``crmail events``)."""

    consumer = models.CharField(max_length=60)
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="failures")
    attempts = models.PositiveIntegerField(default=1)
    error = models.TextField(blank=True)
    first_failed_at = models.DateTimeField(auto_now_add=True)
    last_failed_at = models.DateTimeField()
    next_try_at = models.DateTimeField(null=True, blank=True)
    parked = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consumer", "event"], name="failure_once")]
        indexes = [models.Index(fields=["parked", "next_try_at"], name="failure_due")]
        ordering = ["-last_failed_at", "pk"]

    def __str__(self) -> str:
        return f"{self.consumer} failed on {self.event_id} ({self.attempts} attempts)"
