"""Links between messages and CRM records, each with the reason it exists (SPEC F4).

A ``Link`` names its record by module and id rather than by foreign key: one table serves
Leads, Contacts, Accounts and Deals, and a record's Emails list is one index range
(module, record_id, date). Accounts hold only their direct links (manual, sent from the
account); the mail of their contacts is found through the contacts at query time
(``crmail.linking.queries``), so a contact moving to another account moves its mail
without rewriting a row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Module(models.TextChoices):
    LEADS = "leads", "Lead"
    CONTACTS = "contacts", "Contact"
    ACCOUNTS = "accounts", "Account"
    DEALS = "deals", "Deal"


class Reason(models.TextChoices):
    ADDRESS = "address", "Address match"
    SENT_FROM_RECORD = "sent_from_record", "Sent from the record"
    MANUAL = "manual", "Linked by a user"
    BCC_DROPBOX = "bcc_dropbox", "BCC dropbox"
    THREAD = "thread", "Same thread"
    WORKFLOW = "workflow", "By a workflow rule"


class Link(models.Model):
    """One message on one record, for one reason (several reasons make several rows)."""

    message = models.ForeignKey("mail.Message", on_delete=models.CASCADE, related_name="links")
    module = models.CharField(max_length=10, choices=Module.choices)
    record_id = models.PositiveBigIntegerField()
    reason = models.CharField(max_length=20, choices=Reason.choices)
    address = models.CharField(
        max_length=254, blank=True, help_text="The matching address (reason 'address' only)."
    )
    date = models.DateTimeField(
        null=True, blank=True, help_text="The message's date, copied for newest-first lists."
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who linked it (manual links, sent mail).",
    )

    class Meta:
        ordering = ["-date", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "module", "record_id", "reason", "address"],
                name="unique_link",
            )
        ]
        indexes = [
            models.Index(fields=["module", "record_id", "-date"], name="link_record_date"),
        ]

    def __str__(self) -> str:
        return f"message {self.message_id} on {self.module} {self.record_id} ({self.reason})"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled (the addresses left the record)"
    FAILED = "failed", "Failed"


class LinkJob(models.Model):
    """Linking a record's past mail in the background, with its progress.

    ``total`` and ``done`` count participant rows (an address in From, To or Cc of one
    message); ``cursor`` is the last participant id handled, so a rerun resumes.
    """

    module = models.CharField(max_length=10, choices=Module.choices)
    record_id = models.PositiveBigIntegerField()
    addresses = models.JSONField(default=list)
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    cursor = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["module", "record_id"], name="linkjob_record")]

    def __str__(self) -> str:
        return f"linking past mail of {self.module} {self.record_id}: {self.done}/{self.total}"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.done * 100 // self.total)
