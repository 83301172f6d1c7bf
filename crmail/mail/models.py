"""Messages by content: raw bytes first, what parsing found beside them (SPEC F2, F4).

A ``Message`` is one content (its SHA-256); where it lies on servers (mailbox, folder,
UID) is a ``mailboxes.Location``, so the same message in two folders, moved, or uploaded
again is one message with several locations, never a duplicate. Its raw bytes are a
``MessageRaw`` row of their own (decision 015), read through ``mail.store.raw_bytes``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ParseState(models.TextChoices):
    PENDING = "pending", "Waiting to be parsed"
    # Headers, participants and thread saved; body text and attachments follow (064).
    PROCESSING = "processing", "Processing"
    PARSED = "parsed", "Parsed"
    PARTIAL = "partial", "Parsed with fallbacks"
    FAILED = "failed", "Could not be parsed (raw bytes kept)"


class Compression(models.IntegerChoices):
    NONE = 0, "none"
    ZSTD = 1, "zstd"


class Thread(models.Model):
    subject = models.TextField(blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return self.subject or f"thread {self.pk}"


class Message(models.Model):
    sha256 = models.CharField(max_length=64, unique=True)
    size = models.PositiveIntegerField(help_text="Bytes of the raw message, uncompressed.")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    received_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "When the server it was first found on received it (IMAP INTERNALDATE, "
            "Gmail's internalDate, Graph's receivedDateTime), where the server says."
        ),
    )

    parse_state = models.CharField(
        max_length=10, choices=ParseState.choices, default=ParseState.PENDING, db_index=True
    )
    parse_problems = models.TextField(blank=True)
    message_id = models.CharField(max_length=500, blank=True, db_index=True)
    in_reply_to = models.CharField(max_length=500, blank=True, db_index=True)
    references = models.TextField(blank=True, help_text="Message-IDs, space separated.")
    subject = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="The Date header.")
    date = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text=(
            "When it was sent (its Date header), else when its server received it, else "
            "when crmail first saw it."
        ),
    )
    from_address = models.CharField(max_length=254, blank=True, db_index=True)
    from_name = models.CharField(max_length=300, blank=True)
    snippet = models.CharField(max_length=300, blank=True)
    body_text = models.TextField(blank=True)
    has_html = models.BooleanField(default=False)
    has_attachments = models.BooleanField(default=False)
    automated = models.BooleanField(default=False, help_text="Mailing-list or automated mail.")
    list_id = models.CharField(max_length=300, blank=True)
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    copy_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="A mailbox's own copy of this message sent through crmail or its BCC "
        "Dropbox (same Message-ID, other bytes): kept, but on records only as that one.",
    )

    # Not a column: the stored form (bytes, compression) of a row that ``store_many`` has
    # just written, so the sync can hand it to the parser without reading it back.
    packed: tuple[bytes, int] | None = None
    # Not a column: set by ``store_many`` on a row it has just written without its body
    # (the organisation's storage was full: a ``WaitingBody``).
    body_waits: bool = False

    class Meta:
        ordering = ["-date", "-pk"]
        indexes = [
            # What search tests on a message by its id, without reading the wide row (its
            # body first): the date, the attachment flag and the thread (decision 045).
            models.Index(fields=["id", "date", "has_attachments", "thread"], name="message_facets"),
        ]

    def __str__(self) -> str:
        return self.subject or f"message {self.pk}"


class MessageRaw(models.Model):
    """A message's bytes as the server gave them, stored apart from what parsing found.

    In a table of their own so that saving parse results, which rewrites a whole row on
    SQLite, never writes the bytes again (decision 015). Read them with
    ``mail.store.raw_bytes``.
    """

    message = models.OneToOneField(
        Message, on_delete=models.CASCADE, primary_key=True, related_name="raw_row"
    )
    raw = models.BinaryField()
    compression = models.PositiveSmallIntegerField(
        choices=Compression.choices, default=Compression.NONE
    )

    def __str__(self) -> str:
        return f"raw bytes of message {self.pk}"


class WaitingBody(models.Model):
    """A message whose body waits (SPEC F11, decision 058): it arrived while the
    organisation's storage was full, so only its header section was kept (here, a few
    kilobytes) and parsed: its participants, thread and links are there, its body is still
    only on the mail server. The blob store holds nothing of it and storage counts it as
    zero; ``mailboxes.bodies`` fetches the whole message when room frees or when someone
    asks, and this row goes when the bytes are stored."""

    message = models.OneToOneField(
        Message, on_delete=models.CASCADE, primary_key=True, related_name="waiting_body"
    )
    headers = models.BinaryField(help_text="The header section as received.")
    since = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"body of message {self.pk} waiting"


class Participant(models.Model):
    """An address in From, Sender, Reply-To, To, Cc or Bcc, as linking looks it up."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="participants")
    role = models.CharField(max_length=10)
    address = models.CharField(max_length=254, db_index=True)
    name = models.CharField(max_length=300, blank=True)
    valid = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["message", "position"]

    def __str__(self) -> str:
        return f"{self.role}: {self.name} <{self.address}>"


class Attachment(models.Model):
    """Metadata of a MIME part; its bytes are read back from the raw message when asked."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    part = models.PositiveIntegerField()
    filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=200)
    size = models.PositiveIntegerField()
    content_id = models.CharField(max_length=500, blank=True)
    inline = models.BooleanField(default=False)

    class Meta:
        ordering = ["message", "part"]
        constraints = [models.UniqueConstraint(fields=["message", "part"], name="unique_part")]

    def __str__(self) -> str:
        return self.filename or f"part {self.part}"


TAG_NAME_MAX = 100


class Tag(models.Model):
    """A name to sort mail by ("quote", "Follow up"): one row per name, whatever its case.

    ``key`` is the name case-folded, unique, so "Quote" and "quote" are one tag; the name
    keeps the spelling it was first given. Written by ``mail.tags`` only.
    """

    name = models.CharField(max_length=TAG_NAME_MAX)
    key = models.CharField(max_length=4 * TAG_NAME_MAX, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class MessageTag(models.Model):
    """A tag on a message; a message holds each tag once."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="tag_rows")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="message_rows")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty when a workflow tagged it.",
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "tag"], name="unique_message_tag"),
        ]
        indexes = [
            # A tag's messages: the filters of the inbox, search and Emails lists.
            models.Index(fields=["tag", "message"], name="message_tag_tag"),
        ]

    def __str__(self) -> str:
        return f"{self.tag_id} on {self.message_id}"


class VerificationCode(models.Model):
    """A code crmail mailed to prove that someone receives mail at an address (F10, F16).

    Only an HMAC of the code is kept. A new code for the same purpose and key replaces the
    old one; each code expires, and a few wrong tries use it up (``mail.verification``).
    """

    purpose = models.CharField(max_length=40, help_text="What the code proves, e.g. domain.")
    key = models.CharField(max_length=300, help_text="Which one: a domain, an address.")
    address = models.EmailField(help_text="Where the code was mailed.")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["purpose", "key"], name="one_code_per_purpose_key")
        ]

    def __str__(self) -> str:
        return f"{self.purpose} code for {self.key} sent to {self.address}"
