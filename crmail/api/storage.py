"""``GET /storage``: email storage (SPEC F11, decision 058). Administrators get the
organisation's usage against its quota, every user's figures (largest first) and the
largest mailboxes; anyone else gets their own figures and mailboxes, and whether the
storage is full (their new mail's bodies then wait). Sizes are bytes as received."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from crmail.api.auth import current_user
from crmail.api.schemas import MAX_LIMIT, ListParams, errors_doc
from crmail.storage import queries

router = Router(tags=["Email storage"])


class QuotaOut(Schema):
    total: int = Field(description="Bytes: base plus extra.")
    base: int = Field(description="The lower of ceiling and per_licence times licences.")
    licences: int = Field(description="Active users: each holds a licence.")
    per_licence: int = Field(description="Bytes per licence (5 GB).")
    ceiling: int = Field(description="Bytes (100 GB).")
    extra_gb: int = Field(description="Gigabytes an administrator added (10^9 bytes each).")
    extra_from_environment: bool = Field(
        description="true: CRMAIL_STORAGE_EXTRA_GB sets extra_gb; the storage page cannot."
    )


class OrganisationOut(Schema):
    used: int = Field(description="Bytes: the sum of every user's.")
    percent: float = Field(description="used as a percentage of the quota.")
    free: int
    warning: int | None = Field(description="The highest warning reached: 80, 95 or 100.")
    waiting: int = Field(description="Messages whose body waits on the mail server.")
    quota: QuotaOut


class UserStorageOut(Schema):
    user_id: int
    email: str
    name: str
    active: bool
    mailboxes: int
    messages: int = Field(description="Messages held, each once however many folders.")
    bytes: int
    share: float = Field(description="Per cent of the organisation's usage.")
    grown_30_days: int = Field(description="Bytes added over the last 30 days.")


class MailboxStorageOut(Schema):
    mailbox_id: int
    email: str
    user_id: int
    messages: int
    bytes: int


class StorageOut(Schema):
    full: bool = Field(
        description="The organisation's storage is full: new mail keeps its headers, "
        "participants and links, and its body waits until there is room."
    )
    organisation: OrganisationOut | None = Field(
        description="Null unless you are an administrator."
    )
    mailboxes: list[MailboxStorageOut] = Field(
        description="The largest mailboxes (administrators), or your own."
    )
    items: list[UserStorageOut] = Field(description="Users, largest first (or only you).")
    count: int
    limit: int
    offset: int


@router.get(
    "",
    response={200: StorageOut},
    openapi_extra=errors_doc(401, 422),
    summary="Email storage: the organisation's and each user's",
)
def read_storage(request: HttpRequest, params: Query[ListParams]) -> dict[str, Any]:
    user = current_user(request)
    overview = queries.organisation()
    admin = user.is_admin
    rows = queries.users(None if admin else user)
    limit = min(params.limit, MAX_LIMIT)
    boxes = queries.largest_mailboxes() if admin else queries.largest_mailboxes(100, owner=user)
    q = overview.quota
    return {
        "full": overview.full,
        "organisation": {
            "used": overview.used,
            "percent": round(overview.percent, 2),
            "free": overview.free,
            "warning": overview.level,
            "waiting": overview.waiting,
            "quota": {
                "total": q.total,
                "base": q.base,
                "licences": q.licences,
                "per_licence": q.per_licence,
                "ceiling": q.ceiling,
                "extra_gb": q.extra_gb,
                "extra_from_environment": q.extra_from_environment,
            },
        }
        if admin
        else None,
        "mailboxes": [
            {
                "mailbox_id": b.mailbox.pk,
                "email": b.mailbox.email,
                "user_id": b.mailbox.owner_id,
                "messages": b.messages,
                "bytes": b.bytes,
            }
            for b in boxes
        ],
        "items": [
            {
                "user_id": r.user.pk,
                "email": r.user.email,
                "name": r.user.name,
                "active": r.user.is_active,
                "mailboxes": r.mailboxes,
                "messages": r.messages,
                "bytes": r.bytes,
                "share": round(r.share, 2),
                "grown_30_days": r.grown,
            }
            for r in rows[params.offset : params.offset + limit]
        ],
        "count": len(rows),
        "limit": limit,
        "offset": params.offset,
    }
