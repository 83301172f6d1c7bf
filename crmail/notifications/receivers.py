"""The "alerts" consumer of the outbox: customer mail becomes notifications (alerts.py).

``message.linked``: a message was just put on a lead or contact by its addresses.
``message.received``: a copy reached an Inbox; a message linked before (stored earlier for
another mailbox) is told of to this mailbox's owner too. ``live_mail.received``: mail
reached the Inbox of a mailbox that keeps no copy (its Mail ID, From and received time).
All are idempotent: a
notification is unique per user, message and kind.
"""

from __future__ import annotations

from datetime import datetime

from crmail.events.kinds import LiveMailReceived, MessageLinked, MessageReceived
from crmail.events.registry import Delivered, consumer
from crmail.linking.models import Reason
from crmail.notifications import alerts


@consumer("alerts", ("message.linked", "message.received", "live_mail.received"), batch=500)
def handle(batch: list[Delivered]) -> None:
    candidates: list[alerts.Candidate] = []
    received: dict[int, datetime] = {}
    live: dict[int, datetime] = {}
    for item in batch:
        data = item.data
        at = item.event.created_at
        if isinstance(data, MessageLinked):
            if data.module in alerts.PERSON_MODULES and data.reason == Reason.ADDRESS:
                candidates.append(
                    alerts.Candidate(data.message_id, data.module, data.record_id, at)
                )
        elif isinstance(data, MessageReceived) and data.folder_role == "inbox":
            received[data.message_id] = at
        elif isinstance(data, LiveMailReceived):
            live[data.live_mail_id] = at
    if received:
        candidates.extend(alerts.linked_in_inbox(received))
    alerts.notify(candidates)
    if live:
        alerts.notify_live(live)
