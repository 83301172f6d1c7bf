"""The outbox's ``webhooks`` consumer: each event becomes one delivery for each enabled
endpoint that asked for its kind. Only rows are written here (in the consumer's
transaction, once per endpoint and event: a repeat is ignored); the calls are made by the
``webhooks.send`` job after the commit."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from crmail.events.kinds import REGISTRY, dump
from crmail.events.registry import Delivered, consumer
from crmail.webhooks.models import Delivery, Endpoint


def payload(kind: str, at: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a call (docs/events.md, "Webhooks")."""
    return {"type": kind, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}


def no_endpoint() -> bool:
    return not Endpoint.objects.filter(enabled=True).exists()


@consumer("webhooks", REGISTRY.keys(), batch=500, idle=no_endpoint)
def handle(batch: list[Delivered]) -> None:
    endpoints = [(e.pk, set(e.kinds)) for e in Endpoint.objects.filter(enabled=True).only("kinds")]
    if not endpoints:
        return
    now = timezone.now()
    rows = [
        Delivery(
            endpoint_id=pk,
            event_id=item.event.pk,
            kind=item.event.kind,
            payload=payload(item.event.kind, item.event.created_at, dump(item.data)),
            next_try_at=now,
        )
        for item in batch
        for pk, kinds in endpoints
        if item.event.kind in kinds
    ]
    if not rows:
        return
    Delivery.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    touched = sorted({row.endpoint_id for row in rows})

    def nudge() -> None:
        from crmail.webhooks import tasks

        tasks.send_soon(touched)

    transaction.on_commit(nudge)
