"""Email intelligence's rows (SPEC F15, decision 061).

Per message its ``Result``: what the analysis found (reply text, language, sentiment with
its score, intent, signature details, meeting times) and, for a long thread, the thread's
summary as of that message; the tier and the analysis version it was computed with (a
result of another version is computed again by ``crmail intelligence rerun``). Per
suggestion the user's ``Decision``: signature details offered as updates to a contact and
meeting times offered as tasks are applied only when someone accepts them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Tier(models.TextChoices):
    DEFAULT = "default", "Default (rules and a small classifier)"
    ML = "ml", "Machine learning (the crmail[ml] extra)"


class IntelligenceSetting(models.Model):
    """The organisation's switch (on unless an administrator turned it off) and tier. One
    row (pk 1); no row means on, default tier."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    enabled = models.BooleanField(default=True)
    tier = models.CharField(max_length=10, choices=Tier.choices, default=Tier.DEFAULT)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="intelligence_setting_one_row")
        ]

    def __str__(self) -> str:
        return f"intelligence {'on' if self.enabled else 'off'} ({self.tier})"


class Sentiment(models.TextChoices):
    POSITIVE = "positive", "Positive"
    NEUTRAL = "neutral", "Neutral"
    NEGATIVE = "negative", "Negative"


class Intent(models.TextChoices):
    REQUEST = "request", "Request"
    QUESTION = "question", "Question"
    COMPLAINT = "complaint", "Complaint"
    SCHEDULING = "scheduling", "Scheduling"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe / opt-out"
    OTHER = "other", "Other"


class Result(models.Model):
    """What the analysis found in one message."""

    message = models.OneToOneField(
        "mail.Message", on_delete=models.CASCADE, primary_key=True, related_name="intelligence"
    )
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices)
    sentiment_score = models.FloatField()
    intent = models.CharField(max_length=12, choices=Intent.choices)
    summary = models.TextField(blank=True, help_text="The thread's summary as of this message.")
    summary_of = models.JSONField(
        default=list, blank=True, help_text="The messages the summary was read from (ids)."
    )
    reply_text = models.TextField(blank=True)
    signature = models.JSONField(null=True, blank=True)
    meetings = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=8, blank=True)
    tier = models.CharField(max_length=10, choices=Tier.choices, default=Tier.DEFAULT)
    version = models.CharField(max_length=40, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["sentiment", "message"], name="intelligence_sentiment"),
            models.Index(fields=["intent", "message"], name="intelligence_intent"),
            models.Index(fields=["version"], name="intelligence_version"),
        ]

    def __str__(self) -> str:
        return f"{self.sentiment} {self.intent} (message {self.message_id})"


class Kind(models.TextChoices):
    SIGNATURE = "signature", "Signature details"
    MEETING = "meeting", "Meeting time"


class State(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    DISMISSED = "dismissed", "Dismissed"


class Decision(models.Model):
    """A user's answer to a suggestion of a message: its signature details for a record
    (``key``: ``module:id``), or its meeting number ``key`` (from 0)."""

    message = models.ForeignKey(
        "mail.Message", on_delete=models.CASCADE, related_name="intelligence_decisions"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    key = models.CharField(max_length=40)
    state = models.CharField(max_length=10, choices=State.choices)
    fields = models.JSONField(default=list, blank=True, help_text="The details applied.")
    task = models.ForeignKey(
        "crm.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "kind", "key"], name="one_decision_per_suggestion"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} of message {self.message_id}: {self.state}"
