"""The writers of webhook endpoints (administrators only): add one (its secret answered
once), change its URL or kinds, turn it on or off, delete it, send it a test. The pages,
the API and the tests all write through these."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from crmail.events.kinds import REGISTRY
from crmail.people.models import User
from crmail.webhooks import send
from crmail.webhooks.consumer import payload
from crmail.webhooks.models import TEST_KIND, Delivery, Endpoint

ADMINS_ONLY = "Only administrators manage webhooks."


class Invalid(Exception):
    """The input does not make a valid endpoint; ``errors`` lists ``{"field", "message"}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class NotAllowed(Exception):
    """The acting user may not manage webhooks, or not this way now."""


def kinds() -> list[str]:
    """Every kind of event an endpoint may ask for, in the order docs/events.md lists them."""
    return list(REGISTRY)


def kind_groups() -> list[tuple[str, list[str]]]:
    """The kinds grouped by what they are about ("message", "record", …), for the form."""
    groups: dict[str, list[str]] = {}
    for name in kinds():
        groups.setdefault(name.split(".", 1)[0], []).append(name)
    return list(groups.items())


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes one: ``whsec_`` and 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _check_admin(by: User) -> None:
    if not by.is_admin:
        raise NotAllowed(ADMINS_ONLY)


def check(url: str | None, chosen: Iterable[str] | None) -> dict[str, Any]:
    """The cleaned fields given (None: not given), or ``Invalid`` naming each problem."""
    errors: list[dict[str, str]] = []
    out: dict[str, Any] = {}
    if url is not None:
        url = url.strip()
        problem = send.url_problem(url)
        if problem:
            errors.append({"field": "url", "message": problem})
        out["url"] = url
    if chosen is not None:
        chosen = list(dict.fromkeys(chosen))
        unknown = [k for k in chosen if k not in REGISTRY]
        if unknown:
            errors.append(
                {
                    "field": "events",
                    "message": f"Unknown kind of event: {', '.join(unknown)}. "
                    "docs/events.md lists the kinds.",
                }
            )
        elif not chosen:
            errors.append({"field": "events", "message": "Choose at least one kind of event."})
        out["kinds"] = chosen
    if errors:
        raise Invalid(errors)
    return out


def create_endpoint(url: str, chosen: Iterable[str], *, by: User) -> tuple[Endpoint, str]:
    """A new endpoint, on at once; its secret is returned this once (shown, then only
    ever stored encrypted)."""
    _check_admin(by)
    fields = check(url, chosen)
    secret = new_secret()
    endpoint = Endpoint.objects.create(**fields, secret=secret, created_by=by)
    return endpoint, secret


def update_endpoint(
    endpoint: Endpoint,
    *,
    by: User,
    url: str | None = None,
    chosen: Iterable[str] | None = None,
    enabled: bool | None = None,
) -> Endpoint:
    """Change what is given; turning an endpoint on clears why it was off, and its record
    of failures, so it starts afresh."""
    _check_admin(by)
    fields = check(url, chosen)
    if enabled is not None and enabled != endpoint.enabled:
        fields |= _switch(enabled)
    for name, value in fields.items():
        setattr(endpoint, name, value)
    if fields:
        endpoint.save(update_fields=list(fields))
    return endpoint


def _switch(on: bool) -> dict[str, Any]:
    if on:
        return {
            "enabled": True,
            "disabled_reason": "",
            "disabled_at": None,
            "failing_since": None,
            "given_up_in_a_row": 0,
        }
    return {"enabled": False, "disabled_reason": "", "disabled_at": timezone.now()}


def set_enabled(endpoint: Endpoint, on: bool, *, by: User) -> Endpoint:
    return update_endpoint(endpoint, by=by, enabled=on)


def delete_endpoint(endpoint: Endpoint, *, by: User) -> None:
    """The endpoint and its delivery log; nothing more is sent to it."""
    _check_admin(by)
    endpoint.delete()


def send_test(endpoint: Endpoint, *, by: User) -> Delivery:
    """A ``webhook.test`` delivery, sent after the commit like any other."""
    _check_admin(by)
    if not endpoint.enabled:
        raise NotAllowed("This endpoint is off: turn it on to send it a test.")
    now = timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.create(
            endpoint=endpoint,
            kind=TEST_KIND,
            payload=payload(TEST_KIND, now, {"endpoint_id": endpoint.pk, "sent_by_id": by.pk}),
            next_try_at=now,
        )

        def nudge() -> None:
            from crmail.webhooks import tasks

            tasks.send_soon([endpoint.pk])

        transaction.on_commit(nudge)
    return delivery


def enqueue(endpoint: Endpoint, kind: str, data: dict[str, Any], *, key: str) -> Delivery:
    """One call of ``kind`` with ``data`` to ``endpoint``, sent after the commit like an
    event's, retried and logged the same way; ``key`` (unique per endpoint) makes asking
    twice one delivery, and is the webhook-id its receiver sees on every attempt. An
    endpoint that is off keeps it until it is turned on again."""
    now = timezone.now()
    delivery, created = Delivery.objects.get_or_create(
        endpoint=endpoint,
        key=key,
        defaults={"kind": kind, "payload": payload(kind, now, data), "next_try_at": now},
    )
    if created and endpoint.enabled:

        def nudge() -> None:
            from crmail.webhooks import tasks

            tasks.send_soon([endpoint.pk])

        transaction.on_commit(nudge)
    return delivery


def deliveries(endpoint: Endpoint) -> Any:
    """The endpoint's delivery log, newest first."""
    return Delivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-pk")


def auto_disabled() -> list[Endpoint]:
    """Endpoints crmail turned off after repeated failure: administrators are told on every
    page until one is turned on again or deleted."""
    return list(Endpoint.objects.filter(enabled=False).exclude(disabled_reason=""))
