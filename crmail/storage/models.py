"""Email storage over time (SPEC F11, decision 058): the warnings raised and each day's
figures. The counters themselves are ``mailboxes.StorageUsage``, kept where mail is
stored; the quota is ``mailboxes.quota``."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Alert(models.Model):
    """A threshold of the quota (80, 95 or 100 %) that usage has reached: administrators
    were told once, when the row was made; it goes when usage falls below it again, so the
    next crossing tells them again."""

    level = models.PositiveSmallIntegerField(unique=True, help_text="Per cent of the quota.")
    raised_at = models.DateTimeField(auto_now_add=True)
    used = models.BigIntegerField(help_text="Bytes used when it was raised.")
    quota = models.BigIntegerField(help_text="The quota then, in bytes.")

    class Meta:
        ordering = ["level"]

    def __str__(self) -> str:
        return f"{self.level} % reached"


class UsageDay(models.Model):
    """A user's storage at the end of a day (the last figure of the day): the growth chart
    and each user's growth."""

    day = models.DateField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    messages = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["day", "user"]
        constraints = [models.UniqueConstraint(fields=["day", "user"], name="one_usage_day")]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.day}: {self.bytes} bytes"
