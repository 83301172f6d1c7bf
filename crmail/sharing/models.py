"""Who shares which synced mail (SPEC F5), and who opened which message.

One ``SharingSetting`` per user (its primary key is the user's id, so the rows below it
are keyed by the user too and the visibility query joins them to a mailbox's owner
directly). The rules that read these rows are in ``crmail.sharing.visibility``; the only
writers are in ``crmail.sharing.actions``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q, QuerySet

from crmail.linking.models import Module


class Mode(models.TextChoices):
    PRIVATE = "private", "Private"
    PUBLIC = "public", "Public"
    CUSTOM = "custom", "Custom (per record)"


class Audience(models.TextChoices):
    EVERYONE = "everyone", "Everyone who can access the record"
    CHOSEN = "chosen", "Only chosen users and groups"


class SharingSetting(models.Model):
    """How one user's synced mail is shared. No row means private (fail closed)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="sharing",
    )
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.PUBLIC)
    audience = models.CharField(
        max_length=10,
        choices=Audience.choices,
        default=Audience.EVERYONE,
        help_text="Public mode: everyone who can access the record, or only chosen people.",
    )
    locked = models.BooleanField(
        default=False, help_text="Locked by an administrator: the user cannot change it."
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["user__email"]

    def __str__(self) -> str:
        return f"{self.user}: {self.get_mode_display()}"


class ShareTarget(models.Model):
    """A user or a group that a public, chosen-audience setting shares with."""

    setting = models.ForeignKey(SharingSetting, on_delete=models.CASCADE, related_name="targets")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    group = models.ForeignKey(
        "people.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="share_target_user_xor_group",
            ),
            models.UniqueConstraint(
                fields=["setting", "user"],
                condition=Q(user__isnull=False),
                name="unique_target_user",
            ),
            models.UniqueConstraint(
                fields=["setting", "group"],
                condition=Q(group__isnull=False),
                name="unique_target_group",
            ),
        ]

    def __str__(self) -> str:
        return f"shared with {self.user or self.group}"


class ExcludedDomain(models.Model):
    """A domain whose mail stays private in public mode (subdomains included)."""

    setting = models.ForeignKey(
        SharingSetting, on_delete=models.CASCADE, related_name="excluded_domains"
    )
    domain = models.CharField(max_length=253, help_text="Lower case, without '@'.")

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["setting", "domain"], name="unique_excluded_domain")
        ]

    def __str__(self) -> str:
        return self.domain


class SharedRecord(models.Model):
    """Custom mode: the owner shares all their synced mail on this record."""

    setting = models.ForeignKey(
        SharingSetting, on_delete=models.CASCADE, related_name="shared_records"
    )
    module = models.CharField(max_length=10, choices=Module.choices)
    record_id = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["setting", "module", "record_id"], name="unique_shared_record"
            )
        ]
        indexes = [models.Index(fields=["module", "record_id"], name="shared_record_record")]

    def __str__(self) -> str:
        return f"{self.setting_id} shares {self.module} {self.record_id}"


class MessageOpen(models.Model):
    """Audit: a user opened a message (its page, an attachment, through the API)."""

    viewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    viewer_email = models.CharField(max_length=254, help_text="Kept if the user is deleted.")
    message = models.ForeignKey(
        "mail.Message", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    message_sha256 = models.CharField(
        max_length=64, blank=True, help_text="Kept if the message is deleted."
    )
    # A message asked live (a mailbox that keeps no copy): which mailbox, and its Mail ID.
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    remote_id = models.CharField(max_length=300, blank=True)
    module = models.CharField(max_length=10, blank=True, choices=Module.choices)
    record_id = models.PositiveBigIntegerField(null=True, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["message", "-at"], name="message_open_message"),
            models.Index(fields=["viewer", "-at"], name="message_open_viewer"),
        ]

    def __str__(self) -> str:
        what = self.message_sha256[:12] or f"live {self.remote_id[:12]}"
        return f"{self.viewer_email} opened {what} at {self.at:%Y-%m-%d %H:%M}"


class MailBackup(models.Model):
    """An administrator took a whole backup of a user's mail (SPEC F12).

    A deactivated user's synced mail leaves the records' lists unless a backup was taken
    since they were deactivated: then it stays, shared as their setting says.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_backups"
    )
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty when taken at the command line.",
    )
    taken_at = models.DateTimeField()
    messages = models.PositiveIntegerField()
    size = models.PositiveBigIntegerField(help_text="Bytes of the mbox file.")

    class Meta:
        ordering = ["-taken_at", "-pk"]
        indexes = [models.Index(fields=["user", "-taken_at"], name="mail_backup_user")]

    def __str__(self) -> str:
        return f"backup of {self.user} at {self.taken_at:%Y-%m-%d %H:%M}"


def backups_keeping_mail() -> QuerySet[MailBackup]:
    """The backups that keep their user's synced mail on the records (SPEC F12): taken
    since the user was last deactivated (any, for a user never deactivated). The one
    statement of the rule: the visibility layer and the departed users page read it."""
    return MailBackup.objects.filter(
        Q(taken_at__gte=F("user__deactivated_at")) | Q(user__deactivated_at__isnull=True)
    )


def backup_keeps_mail_sql(user: str, connection: Any) -> str:
    """``backups_keeping_mail`` as SQL, for the visibility layer's statements written out
    (``visibility._sharers``): a backup of the user whose row is ``user`` (an alias of the
    user table) keeps their mail. The same rule as the queryset above, side by side."""
    backups = connection.ops.quote_name(MailBackup._meta.db_table)
    return (
        f"EXISTS (SELECT 1 FROM {backups} kb WHERE kb.user_id = {user}.id"  # noqa: S608
        f" AND ({user}.deactivated_at IS NULL OR kb.taken_at >= {user}.deactivated_at))"
    )


class OrganisationSharing(models.Model):
    """The organisation's default mail sharing: what a new user starts with, and what the
    mailbox connect form preselects. One row (pk 1); no row means private."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    default_mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.PRIVATE)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="organisation_sharing_one_row")
        ]

    def __str__(self) -> str:
        return f"organisation default: {self.get_default_mode_display()}"


class VisibilityClass(models.Model):
    """What decides who may see a message, shared by every message it is the same for:
    the mailboxes holding it (their owner, protocol, and whether the copy is internal for
    that owner), who sent it from crmail and how, and the owners of the records it is on
    (decision 063). ``key`` is that, as canonical JSON (``sharing.classes``); written once,
    never changed."""

    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the key.")
    key = models.TextField()

    def __str__(self) -> str:
        return f"visibility class {self.pk}"


class MessageClass(models.Model):
    """A message's visibility class, as of the last time ``sharing.classes`` worked it
    out, with what reports read of the message itself (so that counting half a million
    messages reads this narrow table, not the messages); a message with a
    ``VisibilityChange`` since is asked the rules directly."""

    message = models.OneToOneField(
        "mail.Message",
        primary_key=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="visibility",
    )
    visibility_class = models.ForeignKey(
        VisibilityClass, on_delete=models.PROTECT, related_name="+"
    )
    date = models.DateTimeField(null=True, blank=True)  # ``Message.date``
    from_address = models.CharField(max_length=254, blank=True)  # lower case
    sent = models.BooleanField(default=False)  # sent from crmail or through a dropbox

    def __str__(self) -> str:
        return f"message {self.message_id}: class {self.visibility_class_id}"


class VisibilityChange(models.Model):
    """A message whose visibility class may have changed: written by database triggers
    on every table the class is made from (decision 063), read and deleted by
    ``sharing.classes.classify``. Only inserted by writers, so no writer waits on
    another for it."""

    message_id = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return f"message {self.message_id} changed"
