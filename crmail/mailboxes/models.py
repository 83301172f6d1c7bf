"""Connected mailboxes, their folders, and where each message lies on the server (F1, F2)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from crmail.config.crypto import EncryptedTextField
from crmail.mail.models import Message
from crmail.net import host_problem


class Protocol(models.TextChoices):
    IMAP = "imap", "IMAP"
    POP3 = "pop3", "POP3"
    GMAIL = "gmail", "Gmail API"
    GRAPH = "graph", "Microsoft Graph"


class Security(models.TextChoices):
    TLS = "tls", "SSL/TLS"
    STARTTLS = "starttls", "STARTTLS"
    NONE = "none", "None (unencrypted)"


class AuthMethod(models.TextChoices):
    PASSWORD = "password", "Password or app password"
    OAUTH2 = "oauth2", "OAuth 2"


class SyncState(models.TextChoices):
    NEW = "new", "Not synced yet"
    SYNCING = "syncing", "Sync in progress"
    COMPLETED = "completed", "Completed"
    PAUSED = "paused", "Paused until the provider's daily limit resets"
    ERROR = "error", "Error"
    NEEDS_REAUTH = "needs_reauth", "Needs re-authentication"
    DISABLED = "disabled", "Deactivated"


class Mailbox(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailboxes"
    )
    email = models.EmailField(help_text="The address this mailbox receives.")
    provider = models.CharField(max_length=20, default="custom")
    protocol = models.CharField(max_length=10, choices=Protocol.choices, default=Protocol.IMAP)
    host = models.CharField(max_length=253, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    security = models.CharField(max_length=10, choices=Security.choices, default=Security.TLS)
    allow_self_signed = models.BooleanField(
        default=False, help_text="Accept a self-signed certificate (self-hosted servers)."
    )
    auth_method = models.CharField(
        max_length=10, choices=AuthMethod.choices, default=AuthMethod.PASSWORD
    )
    login = models.CharField(max_length=254, blank=True)
    secret = EncryptedTextField(blank=True, help_text="Password, or the OAuth refresh token.")
    access_token = EncryptedTextField(blank=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    access_token_resource = models.CharField(
        max_length=10,
        blank=True,
        help_text="What the access token opens: 'mail' (IMAP, POP3, SMTP) or 'api' (Gmail "
        "API, Microsoft Graph); empty: the mailbox's own.",
    )

    smtp_host = models.CharField(max_length=253, blank=True)
    smtp_port = models.PositiveIntegerField(null=True, blank=True)
    smtp_security = models.CharField(max_length=10, choices=Security.choices, default=Security.TLS)
    smtp_same_credentials = models.BooleanField(default=True)
    smtp_login = models.CharField(max_length=254, blank=True)
    smtp_secret = EncryptedTextField(blank=True)
    display_name = models.CharField(
        max_length=200,
        blank=True,
        help_text="The name mail sent from this mailbox carries; empty: the user's name.",
    )
    extra_from_addresses = models.JSONField(
        default=list, blank=True, help_text="Other addresses this mailbox may send as."
    )
    store_sent_on_server = models.BooleanField(
        default=True, help_text="Put a copy of mail sent from crmail in the Sent folder."
    )
    customer_alerts = models.BooleanField(
        default=True,
        help_text="Tell the owner at once when mail from a lead or contact reaches the Inbox.",
    )
    deal_labels = models.BooleanField(
        default=False,
        help_text="Sort Inbox mail from contacts under labels by their deals' state "
        "(needs customer alerts).",
    )
    keeps_copy = models.BooleanField(
        default=True,
        help_text="Keep a copy of the mail in crmail (search, reports). IMAP and POP3 always "
        "do; a Gmail API or Graph mailbox without it is asked live and stores nothing of the "
        "mail.",
    )

    import_folders = models.JSONField(
        default=list, blank=True, help_text="Folders to sync; empty for all."
    )
    import_since = models.DateField(null=True, blank=True)
    keep_on_server = models.BooleanField(default=True, help_text="POP3: leave messages there.")

    is_active = models.BooleanField(default=True, help_text="The mailbox that fetches.")
    locked = models.BooleanField(default=False, help_text="Locked by an administrator.")
    created_at = models.DateTimeField(auto_now_add=True)

    state = models.CharField(max_length=15, choices=SyncState.choices, default=SyncState.NEW)
    last_error = models.TextField(blank=True)
    last_error_kind = models.CharField(max_length=30, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    sync_started_at = models.DateTimeField(null=True, blank=True)
    progress_total = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_bytes = models.PositiveBigIntegerField(default=0)
    bytes_today = models.PositiveBigIntegerField(default=0)
    bytes_day = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["owner", "email"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner"], condition=Q(is_active=True), name="one_active_mailbox_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_protocol_display()})"

    def clean(self) -> None:
        errors = {
            name: problem
            for name in ("host", "smtp_host")
            if (problem := host_problem(getattr(self, name)))
        }
        if self.deal_labels and not self.customer_alerts:
            errors["deal_labels"] = (
                "Labels by deal state need customer mail alerts: turn "
                "customer alerts on with them, or turn the labels off too."
            )
        if errors:
            raise ValidationError(errors)


class Folder(models.Model):
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="folders")
    remote_id = models.CharField(max_length=1000, help_text="The server's name for it.")
    name = models.CharField(max_length=1000)
    role = models.CharField(
        max_length=10, blank=True, help_text="inbox, sent, drafts, trash, junk, archive, or empty."
    )
    role_from_server = models.BooleanField(default=False)
    selectable = models.BooleanField(default=True)
    sync_enabled = models.BooleanField(default=True)
    cursor = models.JSONField(default=dict, blank=True)
    exists_on_server = models.BooleanField(default=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["mailbox", "name"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "remote_id"], name="unique_folder"),
        ]

    def __str__(self) -> str:
        return self.name


class Location(models.Model):
    """One message at one place on a server: a folder and the server's id for it there."""

    # No index of their own: the indexes below start with them (a first sync writes every
    # location through each index).
    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.CASCADE, related_name="locations", db_index=False
    )
    folder = models.ForeignKey(
        Folder, on_delete=models.CASCADE, related_name="locations", db_index=False
    )
    message = models.ForeignKey("mail.Message", on_delete=models.PROTECT, related_name="locations")
    remote_id = models.CharField(max_length=255, help_text="IMAP UID, POP3 UIDL, API id.")
    uid = models.PositiveBigIntegerField(null=True, blank=True)
    seen = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    answered = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    draft = models.BooleanField(default=False)
    keywords = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Copied from the message (decision 028), so a folder's conversations are read newest
    # first from one index: its thread (None until parsed, or when parsing failed) and its
    # date (when crmail stored it, until parsed). Set by every writer of locations and by
    # ``mailboxes.receivers`` when parse results commit.
    thread = models.ForeignKey(
        "mail.Thread", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    date = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["folder", "remote_id"], name="unique_location"),
        ]
        indexes = [
            models.Index(fields=["mailbox", "message"], name="location_mailbox_msg"),
            # A user's unread (or read) copies, for search's is:unread (decision 045).
            models.Index(fields=["mailbox", "seen", "message"], name="location_mailbox_seen"),
            models.Index(fields=["folder", "-date", "-id"], name="location_folder_date"),
            models.Index(fields=["folder", "thread", "-date"], name="location_folder_thread"),
        ]

    def __str__(self) -> str:
        return f"{self.folder} #{self.remote_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A new row takes its message's thread and date (bulk writers pass them) and
        counts in storage (decision 058); the conversations it leaves and joins follow
        (decision 028)."""
        from crmail.mailboxes import conversations, usage

        before: set[tuple[int, int]] = set()
        if self._state.adding or self.pk is None:
            if self.thread_id is None and self.message_id:
                row = (
                    Message.objects.filter(pk=self.message_id)
                    .values_list("thread_id", "date")
                    .first()
                )
                if row is not None:
                    self.thread_id = row[0]
                    self.date = row[1] or self.date
            owner_id = Mailbox.objects.filter(pk=self.mailbox_id).values_list("owner_id", flat=True)
            with transaction.atomic():  # a refused row counts nothing
                usage.added(self.mailbox_id, owner_id.get(), [self.message_id])
                super().save(*args, **kwargs)
        else:
            before = conversations.keys(Location.objects.filter(pk=self.pk))
            super().save(*args, **kwargs)
        conversations.refresh(before | {conversations.key_of(self)})

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        """Delete the row; its conversation and storage counters follow."""
        from crmail.mailboxes import conversations, usage

        before = conversations.keys(Location.objects.filter(pk=self.pk))
        with usage.removing(Location.objects.filter(pk=self.pk)):
            out = super().delete(*args, **kwargs)
        conversations.refresh(before)
        return out


class Conversation(models.Model):
    """A thread within one folder, summed up from its locations (decision 028): kept by
    every writer of locations and links through ``mailboxes.conversations``, and rebuilt
    from them by ``crmail inbox rebuild``."""

    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="+")
    # The thread's id, or minus the location's id for a message whose thread is not known.
    key = models.BigIntegerField()
    # The newest location (by date, then id): no foreign key, the row is recomputed when
    # its locations change.
    location_id = models.BigIntegerField()
    date = models.DateTimeField()
    messages = models.PositiveIntegerField()
    unread = models.PositiveIntegerField()
    flagged = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["folder", "key"], name="unique_conversation"),
        ]
        indexes = [
            models.Index(fields=["folder", "-date", "-location_id"], name="conversation_newest"),
            models.Index(
                fields=["folder", "-date", "-location_id"],
                name="conversation_unread",
                condition=Q(unread__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.folder_id}/{self.key}"


class ConversationLink(models.Model):
    """A record a message of a conversation is linked to (``linking.Link``), per folder."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="+")
    module = models.CharField(max_length=20)
    record_id = models.BigIntegerField()
    # The conversation has unread mail (a copy of it, so the tab counts read this table alone).
    unread = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "module", "record_id"], name="unique_conversation_link"
            ),
        ]
        indexes = [
            # A folder's links, grouped by conversation (the stream counts).
            models.Index(
                fields=["folder", "conversation", "module", "record_id", "unread"],
                name="conversation_link_folder",
            ),
            # A record's conversations in a folder (the deals stream, a deleted record).
            models.Index(fields=["module", "record_id", "folder"], name="conversation_link_record"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id} {self.module}:{self.record_id}"


class Source(models.TextChoices):
    """Where crmail got a message its user sent (SPEC F17's sources besides the synced)."""

    CRMAIL = "crmail", "Sent from crmail"
    DROPBOX = "dropbox", "BCC Dropbox"


class SentMessage(models.Model):
    """A message its user sent, vouched for by crmail: sent from crmail (SPEC F3), or
    received at the user's BCC Dropbox address (SPEC F6, ``source``). Either way shared with
    everyone who may see its records (SPEC F5)."""

    message = models.ForeignKey("mail.Message", on_delete=models.PROTECT, related_name="sends")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sent_messages"
    )
    mailbox = models.ForeignKey(
        Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="sent_messages"
    )
    from_address = models.EmailField()
    recipients = models.JSONField(default=list)
    sent_at = models.DateTimeField(auto_now_add=True)
    record_module = models.CharField(
        max_length=20, blank=True, help_text="The kind of record it was sent from."
    )
    record_id = models.PositiveBigIntegerField(null=True, blank=True)
    sent_copy_error = models.TextField(
        blank=True, help_text="Why no copy could be put in the server's Sent folder."
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CRMAIL)

    class Meta:
        ordering = ["-sent_at"]
        indexes = [
            models.Index(fields=["record_module", "record_id"], name="sent_record"),
            models.Index(fields=["source", "message"], name="sent_source"),
        ]
        constraints = [
            # The same mail at a user's dropbox twice (a client's retry) is one row.
            models.UniqueConstraint(
                fields=["message", "sender"],
                condition=Q(source="dropbox"),
                name="one_dropbox_copy_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"sent by {self.sender} at {self.sent_at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A new row counts its message in its sender's storage (decision 058)."""
        if not self._state.adding:
            super().save(*args, **kwargs)
            return
        from crmail.mailboxes import usage

        with transaction.atomic():  # a refused row counts nothing
            usage.added_sent(self.sender_id, [self.message_id])
            super().save(*args, **kwargs)


class LabelCategory(models.TextChoices):
    """The labels by deal state (SPEC F8), strongest first; each is a folder or a label
    named as ``label`` says on the server."""

    CLOSING = "closing", "Deals Closing This Month"
    OPEN = "open", "Open Deals"
    CUSTOMERS = "customers", "Customers"


class MoveReason(models.TextChoices):
    SORTED = "sorted", "Sorted by deal state"
    RECATEGORISED = "recategorised", "Its contact's deals changed"
    LABELS_REMOVED = "labels_removed", "Labels removed"


class LabelMove(models.Model):
    """One message moved on the server by the labels by deal state: what the mailbox page
    lists, and what undoing it puts back. Places are the server's names (folder or label
    ``remote_id``) and ids, so moves of mailboxes that keep no copy are logged the same."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="label_moves")
    # Shown with the move when crmail keeps a copy of the mail; nothing else is.
    message = models.ForeignKey(
        "mail.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_address = models.CharField(max_length=254, blank=True)
    source = models.CharField(max_length=1000, help_text="The folder or label it left.")
    source_name = models.CharField(max_length=1000)
    remote_id = models.CharField(max_length=255, help_text="Its id there.")
    target = models.CharField(max_length=1000, help_text="The folder or label it went to.")
    target_name = models.CharField(max_length=1000)
    new_remote_id = models.CharField(
        max_length=255, blank=True, help_text="Its id there; empty when the server did not say."
    )
    category = models.CharField(max_length=10, choices=LabelCategory.choices, blank=True)
    reason = models.CharField(max_length=15, choices=MoveReason.choices)
    moved_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    restored_remote_id = models.CharField(
        max_length=255, blank=True, help_text="Its id back in the source once undone."
    )

    class Meta:
        ordering = ["-moved_at", "-pk"]
        indexes = [
            models.Index(fields=["mailbox", "-moved_at", "-id"], name="label_move_recent"),
            models.Index(
                fields=["mailbox", "source", "restored_remote_id"],
                name="label_move_undone",
                condition=Q(undone_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_name} -> {self.target_name} #{self.remote_id}"


class LiveMail(models.Model):
    """What crmail keeps of a message in the Inbox of a mailbox that keeps no copy (a Gmail
    API or Graph mailbox in privacy mode) while its customer alerts are on: the Mail ID,
    From and received time, to tell the owner of customer mail and to sort labels by deal
    state. Nothing else of the mail (no subject, body, recipients or raw bytes) is kept;
    the rows go when the mail leaves the Inbox, when alerts are turned off and when the
    mailbox is deactivated."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="live_mail")
    remote_id = models.CharField(max_length=255, help_text="The provider's id of the message.")
    sender = models.CharField(max_length=254, help_text="The From address, lower case.")
    received_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "remote_id"], name="unique_live_mail"),
        ]
        indexes = [models.Index(fields=["sender"], name="live_mail_sender")]

    def __str__(self) -> str:
        return f"{self.mailbox_id} #{self.remote_id}"


# The per-user counter's ``mailbox_id``: a user's whole mail, every mailbox and what they
# sent from crmail or through their BCC Dropbox, each message once.
WHOLE = 0


class StorageUsage(models.Model):
    """What mail takes in the blob store (SPEC F11, decision 058): for each user
    (``mailbox_id`` ``WHOLE``) and each of their mailboxes, the messages held and their bytes
    as received, each message once however many folders (or mailboxes) hold it. Kept by
    ``mailboxes.usage`` in the transactions that add and remove locations, sends and
    bodies, and recomputed from the blob store's index by ``crmail storage recount``."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # No foreign key: the row of a deleted mailbox is dropped by the next recount.
    mailbox_id = models.BigIntegerField(default=WHOLE)
    messages = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "mailbox_id"], name="one_usage_row"),
        ]
        indexes = [models.Index(fields=["mailbox_id", "bytes"], name="usage_largest")]

    def __str__(self) -> str:
        return f"usage of {self.user_id}/{self.mailbox_id}: {self.bytes} bytes"


class StorageSetting(models.Model):
    """The storage an administrator adds to the organisation's quota on the storage page
    (one row; ``CRMAIL_STORAGE_EXTRA_GB``, when set, takes its place)."""

    extra_gb = models.PositiveIntegerField(default=0)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.extra_gb} GB added"
