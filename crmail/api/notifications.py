"""``/notifications``: your notifications (customer mail alerts, SPEC F7), newest first, and
marking them read. Only your own: another user's ids are never listed and never marked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field, model_validator

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.schemas import READ_ERRORS, WRITE_ERRORS, Id, Input, ListParams, Page
from crmail.notifications import actions, queries
from crmail.notifications.models import Notification

router = Router(tags=["Notifications"])
MAX_IDS = 1000


class NotificationOut(Schema):
    id: int
    kind: str = Field(
        description='What it tells of: "customer_mail", "workflow" (a rule\'s "notify"), or '
        '"storage" (the organisation\'s storage is nearly full, or mail arrives without its '
        "body)."
    )
    title: str = Field(description='"New mail from Jane Quinn (Contact): Quote for May".')
    excerpt: str
    message_id: int | None = Field(
        description="The message: GET /api/v1/messages/{id}. Null for mail asked live "
        "(a mailbox that keeps no copy): see live_message."
    )
    live_message: str | None = Field(
        None,
        description="Mail crmail keeps no copy of: its address under /api/v1, "
        "mailboxes/{mailbox_id}/live/{message_id} (read live from the provider).",
    )
    link: str | None = Field(
        None,
        description="A page of crmail's it tells of (a path such as /settings/storage/), "
        "when it is not about one message: the storage warnings.",
    )
    record_module: str | None = Field(
        description="The lead or contact it came from (leads, contacts), when you may view it."
    )
    record_id: int | None
    created_at: datetime
    read_at: datetime | None = Field(description="Null while unread.")

    @staticmethod
    def resolve_link(obj: Notification) -> str | None:
        return obj.link or None

    @staticmethod
    def resolve_record_module(obj: Notification) -> str | None:
        return obj.module or None

    @staticmethod
    def resolve_live_message(obj: Notification) -> str | None:
        if obj.live_mail_id is None or obj.live_mail is None:
            return None
        return f"mailboxes/{obj.live_mail.mailbox_id}/live/{obj.live_mail.remote_id}"


class NotificationFilters(ListParams):
    unread: bool = Field(False, description="Only the unread ones.")


class ReadIn(Input):
    ids: list[Id] | None = Field(None, max_length=MAX_IDS, description="Mark these read.")
    all: bool = Field(False, description="Mark every one of yours read.")

    @model_validator(mode="after")
    def _one_of(self) -> ReadIn:
        if self.all == (self.ids is not None):
            raise ValueError('Give either "ids" (a list) or "all": true.')
        return self


class ReadOut(Schema):
    marked: int = Field(description="How many were unread and are now read.")
    unread: int = Field(description="How many of yours are still unread.")


@router.get(
    "",
    response={200: Page[NotificationOut]},
    openapi_extra=READ_ERRORS,
    summary="List your notifications",
)
def list_notifications(request: HttpRequest, filters: Query[NotificationFilters]) -> dict:
    """Newest first; ``?unread=true`` for the unread ones only."""
    user = current_user(request)
    return records.page(queries.feed(user, unread=filters.unread), filters)


@router.post(
    "/read",
    response={200: ReadOut},
    openapi_extra=WRITE_ERRORS,
    summary="Mark notifications read",
)
def mark_read(request: HttpRequest, payload: ReadIn) -> dict[str, Any]:
    """``{"ids": [1, 2]}`` or ``{"all": true}``. Ids that are not yours, or already read,
    change nothing."""
    user = current_user(request)
    marked = actions.mark_read(user, None if payload.all else payload.ids)
    return {"marked": marked, "unread": queries.unread_count(user)}
