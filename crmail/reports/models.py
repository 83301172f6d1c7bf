"""Saved email reports (SPEC F17): a report's grouping and filters under a name, shared
with chosen users and roles, and mailed to its owner on a schedule. Opening one counts
with the opener's own visibility: a saved report shares the question, never its owner's
figures."""

from __future__ import annotations

from django.conf import settings
from django.db import models

NAME_MAX = 100


class Schedule(models.TextChoices):
    NONE = "", "Not mailed"
    DAILY = "daily", "Every day (the day before)"
    WEEKLY = "weekly", "Every Monday (the week before)"
    MONTHLY = "monthly", "On the 1st (the month before)"


class SavedReport(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_reports"
    )
    name = models.CharField(max_length=NAME_MAX)
    group_by = models.CharField(max_length=20)
    after = models.DateField(null=True, blank=True)
    before = models.DateField(null=True, blank=True)
    source = models.CharField(max_length=10, blank=True)
    sentiment = models.CharField(max_length=10, blank=True, help_text="Email intelligence's.")
    intent = models.CharField(max_length=12, blank=True, help_text="Email intelligence's.")
    shared_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="reports_shared_with_me"
    )
    shared_roles = models.ManyToManyField("people.Role", blank=True, related_name="+")
    schedule = models.CharField(max_length=10, choices=Schedule.choices, blank=True)
    last_mailed_on = models.DateField(
        null=True, blank=True, help_text="The day its scheduled mail was last claimed."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="unique_saved_report_name"),
        ]

    def __str__(self) -> str:
        return self.name
