"""Leads, Contacts, Accounts, Deals and their pipelines (SPEC F4, F18).

Every record has an owner; who may see it is decided by ``crmail.people.access``.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class Record(models.Model):
    """What all owned CRM records share."""

    MODULE: ClassVar[str]

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True, db_index=True)
    description = models.TextField(blank=True)

    class Meta:
        abstract = True


class Account(Record):
    MODULE = "accounts"

    name = models.CharField(max_length=200, db_index=True)
    website = models.CharField(max_length=300, blank=True)
    domain = models.CharField(
        max_length=253,
        blank=True,
        db_index=True,
        help_text="The web domain, taken from the website when empty.",
    )
    phone = models.CharField(max_length=50, blank=True)
    industry = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class PersonRecord(Record):
    """Leads and Contacts: people with email addresses."""

    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100)
    title = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    mobile = models.CharField(max_length=50, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def primary_email(self) -> str:
        for address in self.emails.all():
            if address.is_primary:
                return address.address
        return ""

    @property
    def secondary_emails(self) -> list[str]:
        return [a.address for a in self.emails.all() if not a.is_primary]


class Contact(PersonRecord):
    MODULE = "contacts"

    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="Where the contact lives (Europe/Paris); empty: unknown, the organisation's "
        "is used. Their best time to be written to is counted in it.",
    )

    class Meta:
        ordering = ["last_name", "first_name", "pk"]


class LeadStatus(models.TextChoices):
    NEW = "new", "New"
    CONTACTED = "contacted", "Contacted"
    QUALIFIED = "qualified", "Qualified"
    UNQUALIFIED = "unqualified", "Unqualified"
    CONVERTED = "converted", "Converted"


class Lead(PersonRecord):
    MODULE = "leads"

    company = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=LeadStatus.choices, default=LeadStatus.NEW)
    source = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["last_name", "first_name", "pk"]


class EmailAddress(models.Model):
    """A Lead's or Contact's address, normalised (lower case) and indexed for lookups."""

    address = models.CharField(max_length=254, db_index=True)
    is_primary = models.BooleanField(default=False)
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="emails"
    )
    lead = models.ForeignKey(
        Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="emails"
    )

    class Meta:
        ordering = ["-is_primary", "address"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(contact__isnull=False, lead__isnull=True)
                    | Q(contact__isnull=True, lead__isnull=False)
                ),
                name="email_belongs_to_one_record",
            ),
            models.UniqueConstraint(fields=["contact", "address"], name="unique_contact_address"),
            models.UniqueConstraint(fields=["lead", "address"], name="unique_lead_address"),
            models.UniqueConstraint(
                fields=["contact"], condition=Q(is_primary=True), name="one_primary_per_contact"
            ),
            models.UniqueConstraint(
                fields=["lead"], condition=Q(is_primary=True), name="one_primary_per_lead"
            ),
        ]

    def __str__(self) -> str:
        return self.address


class Pipeline(models.Model):
    name = models.CharField(max_length=100, unique=True)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["-is_default", "name"]

    def __str__(self) -> str:
        return self.name


class StageKind(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Closed won"
    LOST = "lost", "Closed lost"


class Stage(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    probability = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Chance of winning, 0 to 100 %.",
    )
    kind = models.CharField(max_length=10, choices=StageKind.choices, default=StageKind.OPEN)

    class Meta:
        ordering = ["pipeline", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "name"], name="unique_stage_name"),
            models.CheckConstraint(
                condition=Q(probability__lte=100), name="stage_probability_0_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.probability} %)"

    def clean(self) -> None:
        if self.kind == StageKind.WON and self.probability != 100:
            raise ValidationError({"probability": "A closed-won stage has probability 100."})
        if self.kind == StageKind.LOST and self.probability != 0:
            raise ValidationError({"probability": "A closed-lost stage has probability 0."})


class Deal(Record):
    MODULE = "deals"

    name = models.CharField(max_length=200, db_index=True)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="deals")
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    closing_date = models.DateField(null=True, blank=True)
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="deals"
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="deals"
    )

    class Meta:
        ordering = ["-modified_at", "pk"]
        indexes = [models.Index(fields=["contact", "-modified_at"], name="deal_contact_recent")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.stage_id and self.pipeline_id and self.stage.pipeline_id != self.pipeline_id:
            raise ValidationError({"stage": "This stage belongs to another pipeline."})


RECORD_MODELS: dict[str, type[Record]] = {
    "leads": Lead,
    "contacts": Contact,
    "accounts": Account,
    "deals": Deal,
}


TASK_TITLE_MAX = 200
TASK_NOTES_MAX = 10_000


class Task(models.Model):
    """Something to do on a record, by a day, for one user (SPEC F13).

    The record is named by module and id, as links name it (``linking.Link``): one table
    serves Leads, Contacts, Accounts and Deals, and a record's tasks are one index range.
    Who sees and changes a task is decided in ``crm.task_actions``; the rows are written
    there only.
    """

    module = models.CharField(max_length=10, choices=[(m, m) for m in RECORD_MODELS])
    record_id = models.PositiveBigIntegerField()
    title = models.CharField(max_length=TASK_TITLE_MAX)
    notes = models.TextField(blank=True)
    due = models.DateField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tasks"
    )
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty when a workflow made it.",
    )
    # The mail it came from (a workflow's task). A plain number: crm sits below mail.
    message_id = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["done", "due", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(done=False, done_at__isnull=True) | Q(done=True, done_at__isnull=False),
                name="task_done_at_when_done",
            ),
        ]
        indexes = [
            # A record's tasks, open ones first by due day.
            models.Index(fields=["module", "record_id", "done", "due"], name="task_record"),
            # A user's open tasks, by due day (the home page).
            models.Index(fields=["owner", "done", "due"], name="task_owner"),
        ]

    def __str__(self) -> str:
        return self.title
