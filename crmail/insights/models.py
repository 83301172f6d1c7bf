"""Email insights' rows (SPEC F9, decision 057).

Reports read them: per sent message (``mailboxes.SentMessage``) its ``Open`` and ``Click``
rows, each with its time, a coarse client kind and whether it was probably a scanner or
a privacy proxy (kept, and left out of the figures); its ``MessageInsight`` says whether
it was tracked and which template it was written from.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class InsightsSetting(models.Model):
    """The organisation's switch: mail sent from crmail is tracked only when it is on.
    One row (pk 1); no row means off."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    tracking = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="insights_setting_one_row")]

    def __str__(self) -> str:
        return f"tracking {'on' if self.tracking else 'off'}"


class MessageInsight(models.Model):
    """What crmail knows of a message it sent, beyond the message: whether its recipients'
    copy carried the pixel and tracked links (``key`` is in each of their tokens), its
    links by index, and the template it was written from."""

    sent = models.OneToOneField(
        "mailboxes.SentMessage", on_delete=models.CASCADE, related_name="insight"
    )
    tracked = models.BooleanField(default=False)
    key = models.CharField(max_length=32, null=True, blank=True, unique=True)
    links = models.JSONField(default=list, blank=True)
    template = models.ForeignKey(
        "emailtemplates.EmailTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="insights",
    )

    class Meta:
        indexes = [models.Index(fields=["template", "tracked"], name="insight_template")]

    def __str__(self) -> str:
        return f"insight of sent message {self.sent_id}"


class ClientKind(models.TextChoices):
    GMAIL = "gmail", "Gmail"
    YAHOO = "yahoo", "Yahoo Mail"
    OUTLOOK = "outlook", "Outlook"
    APPLE = "apple", "Apple Mail"
    MOBILE = "mobile", "Phone or tablet"
    DESKTOP = "desktop", "Computer"
    AUTOMATED = "automated", "Automated"
    UNKNOWN = "unknown", "Unknown"


class Hit(models.Model):
    """An open or a click: when, by what kind of client, and whether it was probably a
    scanner or a privacy proxy rather than a person (``scanner_reason`` says why)."""

    at = models.DateTimeField(db_index=True)
    client = models.CharField(max_length=10, choices=ClientKind.choices)
    scanner = models.BooleanField(default=False)
    scanner_reason = models.CharField(max_length=200, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        abstract = True
        ordering = ["at", "pk"]


class Open(Hit):
    sent = models.ForeignKey(
        "mailboxes.SentMessage", on_delete=models.CASCADE, related_name="opens"
    )

    class Meta(Hit.Meta):
        indexes = [models.Index(fields=["sent", "at"], name="open_sent_at")]

    def __str__(self) -> str:
        return f"open of sent message {self.sent_id} at {self.at:%Y-%m-%d %H:%M}"


class Click(Hit):
    sent = models.ForeignKey(
        "mailboxes.SentMessage", on_delete=models.CASCADE, related_name="clicks"
    )
    link = models.PositiveSmallIntegerField(help_text="The link's place in the message, from 0.")
    url = models.TextField()

    class Meta(Hit.Meta):
        indexes = [models.Index(fields=["sent", "at"], name="click_sent_at")]

    def __str__(self) -> str:
        return f"click in sent message {self.sent_id} at {self.at:%Y-%m-%d %H:%M}"


class ScheduledState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Not sent"


class ScheduledSend(models.Model):
    """A message to send later: what the composer (or the API) would have sent, kept in
    the database until its time, so that a restart loses nothing. A periodic job (and a
    job queued for its time) claims it, sends it once, and records the outcome."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scheduled_sends"
    )
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    send_at = models.DateTimeField()
    state = models.CharField(
        max_length=10, choices=ScheduledState.choices, default=ScheduledState.SCHEDULED
    )
    draft = models.JSONField(help_text="The message: From, recipients, subject, text, HTML.")
    subject = models.TextField(blank=True)
    recipients = models.JSONField(default=list)
    record_module = models.CharField(max_length=20, blank=True)
    record_id = models.PositiveBigIntegerField(null=True, blank=True)
    answers = models.ForeignKey(
        "mail.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The message this one answers (linked like it once sent).",
    )
    track = models.BooleanField(default=True, help_text="False: the sender chose no tracking.")
    template = models.ForeignKey(
        "emailtemplates.EmailTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    best_time_of = models.CharField(
        max_length=300, blank=True, help_text="Scheduled at this contact's best time."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    sent = models.ForeignKey(
        "mailboxes.SentMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["send_at", "pk"]
        indexes = [models.Index(fields=["state", "send_at"], name="scheduled_due")]

    def __str__(self) -> str:
        return f"scheduled send {self.pk} at {self.send_at:%Y-%m-%d %H:%M}"


class ScheduledAttachment(models.Model):
    """A file of a scheduled message, kept until it is sent (or cancelled)."""

    scheduled = models.ForeignKey(
        ScheduledSend, on_delete=models.CASCADE, related_name="attachments"
    )
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=200)
    data = models.BinaryField()

    class Meta:
        ordering = ["scheduled", "position"]

    def __str__(self) -> str:
        return self.name
