"""A mail domain of the organisation and its authentication (SPEC F10, decision 054).

A ``Domain`` is added by an administrator, proven with a code mailed to an address at it
(``mail.verification``, purpose ``domain``; the ``crmail domain add`` command proves it
by being run on the server), and then checked in DNS: its SPF record and the DKIM key
crmail made for it under ``selector``. The private key is encrypted at rest like mailbox
secrets (``EncryptedTextField``, covered by ``crmail keys rotate``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from crmail.config.crypto import EncryptedTextField


class State(models.TextChoices):
    UNVERIFIED = "unverified", "Waiting for the code"
    PENDING = "pending", "Pending"
    AUTHENTICATED = "authenticated", "Authenticated"


class Domain(models.Model):
    name = models.CharField(max_length=253, unique=True, help_text="Lower case, IDNA form.")
    state = models.CharField(max_length=15, choices=State.choices, default=State.UNVERIFIED)
    selector = models.CharField(max_length=63, help_text="The DKIM selector of its key.")
    public_key = models.TextField(help_text="The DKIM record's p= value (base64 DER).")
    private_key = EncryptedTextField(help_text="PEM, encrypted with crmail's keys.")
    code_address = models.EmailField(
        blank=True, help_text="Where the ownership code was mailed (empty: added on the server)."
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    added_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(
        null=True, blank=True, help_text="Ownership proven; its records were shown from then."
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    authenticated_at = models.DateTimeField(null=True, blank=True)
    # The last check's findings: [{"record": "SPF", "ok": bool, "words": "…",
    # "blocking": bool, "inconclusive": bool}], in the order they were checked.
    findings = models.JSONField(default=list, blank=True)
    next_check_at = models.DateTimeField(
        null=True, blank=True, help_text="When the re-check of a pending domain is due."
    )
    recheck_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A pending domain is re-checked until then (48 hours after its records were "
        "shown or last validated by hand); then its administrator is told.",
    )

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(
                fields=["next_check_at"],
                name="domain_recheck_due",
                condition=Q(next_check_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def dkim_name(self) -> str:
        """The DNS name of its DKIM key record."""
        return f"{self.selector}._domainkey.{self.name}"

    @property
    def problems(self) -> list[str]:
        """What the last check found missing or wrong, in words."""
        return [f["words"] for f in self.findings if f.get("blocking") and not f.get("ok")]

    @property
    def notes(self) -> list[str]:
        """What the last check reported beside the problems (DMARC), in words."""
        return [f["words"] for f in self.findings if not f.get("blocking")]
