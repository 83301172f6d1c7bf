"""What linking does when records change (events of ``crm.actions``, after commit)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from crmail.crm.actions import addresses_changed, record_deleted
from crmail.linking import links
from crmail.mail.ingest import messages_parsed


@receiver(addresses_changed, dispatch_uid="linking.addresses_changed")
def on_addresses_changed(
    sender: Any, *, module: str, record_id: int, added: set[str], removed: set[str], **_: Any
) -> None:
    """Unlink what a removed address linked; link the past mail of a new one."""
    links.unlink_addresses(module, record_id, removed)
    links.link_past_mail(module, record_id, added)


@receiver(messages_parsed, dispatch_uid="linking.messages_parsed")
def on_messages_parsed(sender: Any, *, message_ids: list[int], **_: Any) -> None:
    """Synced, sent or dropped mail is on its leads and contacts as soon as it is parsed."""
    links.link_messages(message_ids)


@receiver(record_deleted, dispatch_uid="linking.record_deleted")
def on_record_deleted(sender: Any, *, module: str, record_id: int, **_: Any) -> None:
    links.unlink_record(module, record_id)


# ``contact_account_changed`` needs nothing here: an account's mail is found through its
# contacts when it is read (``queries.record_links``), so it follows the contact at once.
