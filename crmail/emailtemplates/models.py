"""An email template: a name, a subject and a plain-text body with ``{{Model.field}}`` merge
fields (``crmail.emailtemplates.merge``). Personal templates are their owner's; shared ones
are read by everyone."""

from __future__ import annotations

from django.conf import settings
from django.db import models

NAME_MAX = 200
SUBJECT_MAX = 998  # RFC 5322's line limit, as the composer's
BODY_MAX = 100_000


class EmailTemplate(models.Model):
    name = models.CharField(max_length=NAME_MAX)
    subject = models.CharField(max_length=SUBJECT_MAX, blank=True)
    body = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_templates"
    )
    shared = models.BooleanField(default=False, help_text="Everyone may use it.")
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["shared", "name"], name="emailtemplate_shared_name")]

    def __str__(self) -> str:
        return self.name
