"""What linking does when mail is parsed and records change: a consumer of the outbox.

Every step is idempotent (links are unique; past mail is linked by what the record's
addresses are when the step runs), so an event handled again changes nothing.
"""

from __future__ import annotations

from crmail.events.kinds import MessageParsed, RecordCreated, RecordDeleted, RecordUpdated
from crmail.events.registry import Delivered, consumer
from crmail.linking import links
from crmail.linking.links import PERSON_MODULES


@consumer(
    "linking",
    ("message.parsed", "record.created", "record.updated", "record.deleted"),
    batch=500,
    eager=True,
)
def handle(batch: list[Delivered]) -> None:
    """In order; runs of parsed messages are linked together (one statement a chunk)."""
    parsed: list[int] = []
    for item in batch:
        data = item.data
        if isinstance(data, MessageParsed):
            parsed.append(data.message_id)
            continue
        if parsed:
            links.link_messages(parsed)
            parsed = []
        if isinstance(data, RecordCreated) and data.module in PERSON_MODULES:
            links.link_past_mail(data.module, data.record_id, data.addresses)
        elif isinstance(data, RecordUpdated) and data.module in PERSON_MODULES:
            links.unlink_addresses(data.module, data.record_id, data.addresses_removed)
            links.link_past_mail(data.module, data.record_id, data.addresses_added)
        elif isinstance(data, RecordDeleted):
            links.unlink_record(data.module, data.record_id)
    if parsed:
        links.link_messages(parsed)
