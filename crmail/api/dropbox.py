"""Your BCC Dropbox (SPEC F6, decision 052): ``GET /dropbox`` your address, your pattern
for forwarded conversations and the latest mail it received; ``POST /dropbox/regenerate``
a new address (mail to the old one is refused from then on); ``PUT /dropbox/pattern``.

Each user sees and changes only their own dropbox. Without CRMAIL_DROPBOX_DOMAIN the
address is null (``configured`` false) and a new address answers 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from crmail.api.auth import current_user
from crmail.api.errors import Invalid
from crmail.api.schemas import WRITE_ERRORS, Input, errors_doc
from crmail.dropbox import actions, addresses, patterns, queries
from crmail.dropbox.models import Delivery

router = Router(tags=["BCC Dropbox"])


class DeliveryOut(Schema):
    message_id: int
    subject: str
    received_at: datetime
    filed: bool = Field(description="Filing has run (it follows the 250 within seconds).")
    filed_as: str = Field(
        description="deal, contact, lead, unknown (no record has the "
        "correspondent's address) or none (no correspondent found); empty until filed."
    )
    record_module: str = Field(description="deals, contacts or leads; empty when unfiled.")
    record_id: int | None
    correspondent: str = Field(description="The address it was filed by.")
    forwarded: bool = Field(description="The correspondent was found in a forwarded part.")


class DropboxOut(Schema):
    configured: bool = Field(description="An administrator set CRMAIL_DROPBOX_DOMAIN.")
    address: str | None = Field(description="Your dropbox address; Bcc it from your mail.")
    pattern: str = Field(
        description="Your pattern for forwarded conversations; empty: the first From: line."
    )
    recent: list[DeliveryOut] = Field(description="The latest mail it received, newest first.")


class PatternIn(Input):
    pattern: str = Field(
        max_length=patterns.MAX_PATTERN,
        description="A regular expression whose group `address` (else its first group, else "
        "its whole match) holds the original correspondent's address; empty: the default.",
    )


def _delivery(d: Delivery) -> dict[str, Any]:
    return {
        "message_id": d.sent.message_id,
        "subject": d.sent.message.subject,
        "received_at": d.received_at,
        "filed": d.filed_at is not None,
        "filed_as": d.filed_as,
        "record_module": d.record_module,
        "record_id": d.record_id,
        "correspondent": d.correspondent,
        "forwarded": d.forwarded,
    }


def _out(request: HttpRequest) -> dict[str, Any]:
    card = queries.card(current_user(request))
    return {
        "configured": bool(card.address),
        "address": card.address or None,
        "pattern": card.pattern,
        "recent": [_delivery(d) for d in card.recent],
    }


@router.get("", response={200: DropboxOut}, openapi_extra=errors_doc(401), summary="Your dropbox")
def read_dropbox(request: HttpRequest) -> dict[str, Any]:
    """Your dropbox address (made the first time it is asked for), your pattern and the
    latest mail it received with where it was filed."""
    return _out(request)


@router.post(
    "/regenerate",
    response={200: DropboxOut},
    openapi_extra=errors_doc(401, 409),
    summary="A new dropbox address",
)
def regenerate(request: HttpRequest) -> dict[str, Any]:
    """Replace your dropbox address with a new one; mail to the old one is refused (550
    5.1.1) from now on. 409 when no dropbox is set up on this server."""
    if not addresses.domain():
        raise HttpError(409, "The BCC Dropbox is not set up on this server.")
    actions.regenerate(current_user(request))
    return _out(request)


@router.put(
    "/pattern", response={200: DropboxOut}, openapi_extra=WRITE_ERRORS, summary="Set your pattern"
)
def set_pattern(request: HttpRequest, payload: PatternIn) -> dict[str, Any]:
    """Save your pattern for forwarded conversations; one crmail cannot use answers 422
    naming ``pattern``, in words."""
    try:
        actions.set_pattern(current_user(request), payload.pattern)
    except patterns.BadPattern as exc:
        raise Invalid.one("pattern", str(exc)) from None
    return _out(request)
