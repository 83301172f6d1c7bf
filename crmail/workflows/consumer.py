"""The outbox's ``workflows`` consumer: new mail goes through the rules once linking has
linked it (decision 035).

It reads ``message.processed`` (the body text saved: rules look at it), ``message.received``
and ``message.sent`` and is registered ``after="linking"``: it reads only events the
linking consumer has passed, so when it handles a message's ``message.processed``, the
message's links are written (linking handles its ``message.parsed``, which comes first).
A copy stored or a message sent before its body was processed is left to its
``message.processed`` (which comes later and sees every copy then); one of a message
processed and linked before (the same mail reaching a second colleague) is run at once.
A message whose linking failed waits: its event raises here, so it is retried with the
outbox's backoff, after linking's own retry.

Everything is written in the consumer's transaction (``engine.run``): a crash hands the
events out again and the unique run per rule and message makes that harmless.
"""

from __future__ import annotations

from django.db.models import Q

from crmail.events.kinds import MessageProcessed, MessageReceived, MessageSent
from crmail.events.models import ConsumerState, Event, Failure
from crmail.events.registry import Delivered, consumer
from crmail.mail.models import Message, ParseState
from crmail.workflows import engine
from crmail.workflows.models import Workflow

LINKING = "linking"


class WaitingForLinking(Exception):
    """Linking failed on these messages; they are run once it has linked them."""


@consumer(
    "workflows",
    ("message.processed", "message.received", "message.sent"),
    batch=200,
    after=LINKING,
    idle=lambda: not Workflow.objects.filter(enabled=True).exists(),
)
def handle(batch: list[Delivered]) -> None:
    if not Workflow.objects.filter(enabled=True).exists():
        return  # no rule is on: nothing to run, nothing to wait for
    parsed: list[int] = []
    copies: list[int] = []
    for item in batch:
        data = item.data
        if isinstance(data, MessageProcessed):
            parsed.append(data.message_id)
        elif isinstance(data, MessageReceived | MessageSent):
            copies.append(data.message_id)
    ready = parsed + _linked_already(set(copies) - set(parsed))
    broken = _linking_failed(set(ready))
    if broken:
        raise WaitingForLinking(
            "Linking failed on message "
            + ", ".join(map(str, sorted(broken)))
            + "; its rules run once it is linked (see the linking consumer's failures)."
        )
    engine.run(ready)


def _linked_already(message_ids: set[int]) -> list[int]:
    """Of ``message_ids`` (a copy stored, a message sent), those processed and linked
    before: no ``message.processed`` of theirs is past the linking consumer or not
    sequenced yet."""
    if not message_ids:
        return []
    parsed = set(
        Message.objects.filter(pk__in=message_ids)
        .exclude(parse_state__in=(ParseState.PENDING, ParseState.PROCESSING))
        .values_list("pk", flat=True)
    )
    if not parsed:
        return []
    linking = (
        ConsumerState.objects.filter(name=LINKING).values_list("position", flat=True).first() or 0
    )
    ahead = Event.objects.filter(kind="message.processed").filter(
        Q(position__isnull=True) | Q(position__gt=linking)
    )
    later = {int(m) for m in ahead.values_list("data__message_id", flat=True) if m is not None}
    return sorted(parsed - later)


def _linking_failed(message_ids: set[int]) -> set[int]:
    """Of ``message_ids``, those whose ``message.parsed`` linking failed on and has not
    handled since (it is retried, or parked for an administrator)."""
    if not message_ids:
        return set()
    rows = Failure.objects.filter(consumer=LINKING, event__kind="message.parsed").values_list(
        "event__data__message_id", flat=True
    )
    return {int(m) for m in rows if m is not None} & message_ids
