"""The "deal-labels" consumer of the outbox: soon after deals change, sort again (SPEC F8).

A deal made, deleted, or changed in a way that can move its contact's mail (stage, closing
date, contact, owner: who may see it), and a contact whose addresses or owner changed or
that was deleted, queue a sort of every mailbox whose labels are on, once per batch, after
the batch's commit. The periodic sort would find the same within ten minutes; this makes it
a matter of seconds. Sorting is idempotent, so an event seen twice costs one more sort.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction

from crmail.events.kinds import DealStageChanged, RecordCreated, RecordDeleted, RecordUpdated
from crmail.events.registry import Delivered, consumer
from crmail.mailboxes.labels import tasks

DEAL_FIELDS = frozenset({"stage", "closing_date", "contact", "owner", "pipeline"})
CONTACT_FIELDS = frozenset({"owner"})


def moves_mail(data: object) -> bool:
    """True when the event can change which label some contact's mail belongs under."""
    if isinstance(data, DealStageChanged):
        return True
    if isinstance(data, (RecordCreated, RecordDeleted)):
        return data.module in ("deals", "contacts") and not (
            isinstance(data, RecordCreated) and data.module == "contacts"
        )
    if isinstance(data, RecordUpdated):
        if data.module == "deals":
            return bool(DEAL_FIELDS & set(data.fields))
        if data.module == "contacts":
            return bool(
                CONTACT_FIELDS & set(data.fields) or data.addresses_added or data.addresses_removed
            )
    return False


@consumer(
    "deal-labels",
    ("deal.stage_changed", "record.created", "record.updated", "record.deleted"),
    batch=500,
)
def handle(batch: list[Delivered]) -> None:
    if not any(moves_mail(item.data) for item in batch):
        return
    for pk in tasks.sorted_mailboxes():
        transaction.on_commit(partial(tasks.request_sort, pk))
