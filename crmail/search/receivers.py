"""What search does when mail changes: parsed mail enters the index once it commits."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from crmail.mail.ingest import messages_parsed
from crmail.search import index


@receiver(messages_parsed, dispatch_uid="search.messages_parsed")
def on_messages_parsed(sender: Any, *, message_ids: list[int], **_: Any) -> None:
    """Synced, sent or dropped mail is found by search as soon as it is parsed."""
    index.index_messages(message_ids)
