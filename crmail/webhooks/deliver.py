"""Sending deliveries: claim a due one, sign and POST it, record how it went, retry with
backoff, give up after about a day, and turn off an endpoint that keeps failing.

No row is locked while a call is on the wire (it may take ten seconds, and SQLite has one
writer): a delivery is claimed by moving its ``next_try_at`` past the call's end in one
conditional UPDATE, so a second sender finds nothing to do, and a sender that dies
mid-call leaves a delivery the sweep takes up again once the claim lapses.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks import Webhook

from crmail.webhooks import send
from crmail.webhooks.models import Delivery, Endpoint, State

log = logging.getLogger(__name__)

# Waits after each failed attempt (the first is at once), as Svix, where the Standard
# Webhooks specification comes from, retries: about a day in all, then given up.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
CLAIM = timedelta(seconds=send.TIMEOUT * 6)  # longer than any one call
FAILING_FOR = timedelta(days=1)
GIVEN_UP_LIMIT = 20
BATCH = 200
KEEP = timedelta(days=30)  # delivered and given-up deliveries are kept this long


def body_of(delivery: Delivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(secret: str, webhook_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one call."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body),
    }


def due(endpoint_id: int | None = None, *, now: datetime | None = None) -> Q:
    """Deliveries waiting to be sent (of enabled endpoints)."""
    now = now or timezone.now()
    q = Q(state__in=(State.PENDING, State.FAILED), next_try_at__lte=now, endpoint__enabled=True)
    return q & Q(endpoint_id=endpoint_id) if endpoint_id is not None else q


def send_due(endpoint_id: int, *, now: datetime | None = None, limit: int = BATCH) -> int:
    """Send up to ``limit`` due deliveries of one endpoint, oldest first; the number tried."""
    now = now or timezone.now()
    ids = list(
        Delivery.objects.filter(due(endpoint_id, now=now))
        .order_by("next_try_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(attempt(pk, now=now) is not None for pk in ids)


def attempt(delivery_id: int, *, now: datetime | None = None) -> bool | None:
    """Send one delivery if it is due and nobody else is sending it: True when the endpoint
    took it, False when the attempt failed, None when it was not sent."""
    now = now or timezone.now()
    claimed = Delivery.objects.filter(due(now=now), pk=delivery_id).update(next_try_at=now + CLAIM)
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:  # deleted with its endpoint meanwhile
        return None
    endpoint = delivery.endpoint
    body = body_of(delivery)
    sent_at = timezone.now()
    answer = send.post(
        endpoint.url, body, signed_headers(endpoint.secret, delivery.webhook_id, body, sent_at)
    )
    record(delivery_id, answer, at=max(now, sent_at))
    return answer.ok


def record(delivery_id: int, answer: send.Answer, *, at: datetime) -> None:
    """What one attempt did to its delivery and to its endpoint's health."""
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            return  # the endpoint was deleted during the call, with its log
        endpoint = Endpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        delivery.attempts += 1
        delivery.last_tried_at = at
        delivery.status_code = answer.status
        delivery.latency_ms = answer.latency_ms
        delivery.response_excerpt = answer.excerpt
        delivery.error = (answer.error or _status_words(answer.status))[:300]
        changed_endpoint: list[str] = []
        if answer.ok:
            delivery.state = State.DELIVERED
            delivery.delivered_at = at
            delivery.next_try_at = None
            delivery.error = ""
            if endpoint.failing_since is not None or endpoint.given_up_in_a_row:
                endpoint.failing_since = None
                endpoint.given_up_in_a_row = 0
                changed_endpoint += ["failing_since", "given_up_in_a_row"]
        else:
            if endpoint.failing_since is None:
                endpoint.failing_since = at
                changed_endpoint.append("failing_since")
            if delivery.attempts <= len(RETRY_DELAYS):
                delivery.state = State.FAILED
                delivery.next_try_at = at + RETRY_DELAYS[delivery.attempts - 1]
            else:
                delivery.state = State.GIVEN_UP
                delivery.next_try_at = None
                endpoint.given_up_in_a_row += 1
                changed_endpoint.append("given_up_in_a_row")
            reason = _disable_reason(endpoint, at)
            if reason and endpoint.enabled:
                endpoint.enabled = False
                endpoint.disabled_reason = reason
                endpoint.disabled_at = at
                changed_endpoint += ["enabled", "disabled_reason", "disabled_at"]
                log.warning("webhooks: endpoint %s turned off: %s", endpoint.pk, reason)
        delivery.save()
        if changed_endpoint:
            endpoint.save(update_fields=changed_endpoint)
    if delivery.state == State.FAILED and delivery.next_try_at is not None:
        from crmail.webhooks import tasks

        tasks.send_later(delivery.endpoint_id, delivery.next_try_at)


def _disable_reason(endpoint: Endpoint, at: datetime) -> str:
    if endpoint.given_up_in_a_row >= GIVEN_UP_LIMIT:
        return (
            f"{endpoint.given_up_in_a_row} deliveries in a row were given up after a day "
            "of retries."
        )
    if endpoint.failing_since is not None and at - endpoint.failing_since >= FAILING_FOR:
        return "Every delivery attempt failed for a day."
    return ""


def _status_words(status: int | None) -> str:
    if status is None or 200 <= status < 300:
        return ""
    if 300 <= status < 400:
        return f"The endpoint answered {status} (a redirect); redirects are not followed."
    return f"The endpoint answered {status}."


def endpoints_with_due(*, now: datetime | None = None) -> list[int]:
    return list(
        Delivery.objects.filter(due(now=now))
        .order_by()
        .values_list("endpoint_id", flat=True)
        .distinct()
    )


def prune(*, now: datetime | None = None) -> int:
    """Forget delivered and given-up deliveries older than ``KEEP``."""
    now = now or timezone.now()
    old = Delivery.objects.filter(
        state__in=(State.DELIVERED, State.GIVEN_UP), created_at__lt=now - KEEP
    )
    return old.delete()[0]
