"""``/webhooks``: administrators register endpoints that receive events as signed POSTs
(Standard Webhooks; docs/events.md, "Webhooks"). The signing secret is answered once, when
the endpoint is made; every other answer leaves it out. Others get 403."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from crmail.api import records
from crmail.api.auth import admin_user
from crmail.api.errors import Forbidden, Invalid
from crmail.api.schemas import Id, Input, ListParams, Page, errors_doc
from crmail.people.models import User
from crmail.webhooks import actions
from crmail.webhooks.models import Delivery, Endpoint, State

router = Router(tags=["Webhooks"])

READ = errors_doc(401, 403, 404, 422)
WRITE = errors_doc(400, 401, 403, 404, 422)


def _admin(request: HttpRequest) -> User:
    return admin_user(request, actions.ADMINS_ONLY)


@contextmanager
def _errors():  # type: ignore[no-untyped-def]
    try:
        yield
    except actions.Invalid as exc:
        raise Invalid(exc.errors) from None
    except actions.NotAllowed as exc:
        raise Forbidden(str(exc)) from None


class EndpointOut(Schema):
    id: int
    url: str
    events: list[str] = Field(description="The kinds of events sent to it.")
    enabled: bool
    disabled_reason: str = Field(
        description="Why crmail turned it off after repeated failure; empty otherwise."
    )
    created_at: datetime


class NewEndpointOut(EndpointOut):
    secret: str = Field(
        description="The signing secret (whsec_…): answered only this once, keep it safe."
    )


class EndpointIn(Input):
    url: str = Field(max_length=2000, description="An http:// or https:// URL.")
    events: list[str] = Field(max_length=100, description="Kinds of events, as in docs/events.md.")


class EndpointPatch(Input):
    url: str | None = Field(None, max_length=2000)
    events: list[str] | None = Field(None, max_length=100)
    enabled: bool | None = Field(
        None, description="true turns it on again (clearing why it was off)."
    )


class DeliveryOut(Schema):
    id: int
    webhook_id: str = Field(description="The webhook-id header: the same on every attempt.")
    type: str
    state: State
    attempts: int
    status_code: int | None = Field(description="The last answer's status; null: none came.")
    latency_ms: int | None
    response_excerpt: str = Field(description="The start of the last answer's body.")
    error: str = Field(description="What went wrong with the last attempt, in words.")
    next_try_at: datetime | None
    created_at: datetime
    last_tried_at: datetime | None
    delivered_at: datetime | None


def _out(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "events": list(endpoint.kinds),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at,
    }


def _delivery_out(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.pk,
        "webhook_id": d.webhook_id,
        "type": d.kind,
        "state": d.state,
        "attempts": d.attempts,
        "status_code": d.status_code,
        "latency_ms": d.latency_ms,
        "response_excerpt": d.response_excerpt,
        "error": d.error,
        "next_try_at": d.next_try_at,
        "created_at": d.created_at,
        "last_tried_at": d.last_tried_at,
        "delivered_at": d.delivered_at,
    }


def _endpoint(pk: int) -> Endpoint:
    return records.get_or_404(Endpoint.objects.all(), pk)


@router.get("", response={200: Page[EndpointOut]}, openapi_extra=READ, summary="List webhooks")
def list_endpoints(request: HttpRequest, params: Query[ListParams]) -> dict[str, Any]:
    _admin(request)
    page = records.page(Endpoint.objects.order_by("pk"), params)
    page["items"] = [_out(e) for e in page["items"]]
    return page


@router.post(
    "",
    response={201: NewEndpointOut},
    openapi_extra=WRITE,
    summary="Add a webhook endpoint (its secret is answered once)",
)
def create_endpoint(request: HttpRequest, payload: EndpointIn) -> dict[str, Any]:
    """Each call is a POST signed per Standard Webhooks with the secret answered here."""
    user = _admin(request)
    with _errors():
        endpoint, secret = actions.create_endpoint(payload.url, payload.events, by=user)
    return {**_out(endpoint), "secret": secret}


@router.get("/{id}", response={200: EndpointOut}, openapi_extra=READ, summary="Read a webhook")
def read_endpoint(request: HttpRequest, id: Id) -> dict[str, Any]:
    _admin(request)
    return _out(_endpoint(id))


@router.patch("/{id}", response={200: EndpointOut}, openapi_extra=WRITE, summary="Change a webhook")
def update_endpoint(request: HttpRequest, id: Id, payload: EndpointPatch) -> dict[str, Any]:
    """Fields given change; null or absent leave them as they are."""
    user = _admin(request)
    endpoint = _endpoint(id)
    with _errors():
        actions.update_endpoint(
            endpoint, by=user, url=payload.url, chosen=payload.events, enabled=payload.enabled
        )
    return _out(endpoint)


@router.delete(
    "/{id}", response={204: None}, openapi_extra=WRITE, summary="Delete a webhook and its log"
)
def delete_endpoint(request: HttpRequest, id: Id) -> None:
    user = _admin(request)
    endpoint = _endpoint(id)
    with _errors():
        actions.delete_endpoint(endpoint, by=user)


@router.get(
    "/{id}/deliveries",
    response={200: Page[DeliveryOut]},
    openapi_extra=READ,
    summary="A webhook's delivery log",
)
def list_deliveries(request: HttpRequest, id: Id, params: Query[ListParams]) -> dict[str, Any]:
    """Newest first: each event (or test) sent, its attempts and the last answer."""
    _admin(request)
    page = records.page(actions.deliveries(_endpoint(id)), params)
    page["items"] = [_delivery_out(d) for d in page["items"]]
    return page


@router.post(
    "/{id}/test",
    response={202: DeliveryOut},
    openapi_extra=WRITE,
    summary="Send a webhook.test call",
)
def send_test(request: HttpRequest, id: Id) -> dict[str, Any]:
    """Queued at once; its outcome is in the delivery log. An endpoint that is off: 403."""
    user = _admin(request)
    endpoint = _endpoint(id)
    with _errors():
        delivery = actions.send_test(endpoint, by=user)
    return _delivery_out(delivery)
