"""``GET /inbox``: the caller's own mail as conversations, by stream (SPEC F14).

Read through ``crmail.mailboxes.inbox``: only the folders of the caller's active
mailboxes; a folder of anyone else answers 404, as one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import Http404, HttpRequest
from django.urls import reverse
from ninja import Query, Router, Schema
from pydantic import Field

from crmail.api.auth import current_user
from crmail.api.intelligence import attach, filter_of
from crmail.api.schemas import (
    INTELLIGENCE_DOC,
    MAX_LIMIT,
    TAG_FILTER,
    Id,
    IntelligenceFilters,
    IntelligenceOut,
    ListParams,
    Page,
    TagName,
    errors_doc,
)
from crmail.intelligence.queries import within
from crmail.mailboxes import inbox

router = Router(tags=["Inbox"])

Stream = Literal["deals", "contacts", "leads", "others"]


class InboxParams(ListParams, IntelligenceFilters):
    stream: Stream | None = Field(
        None,
        description="deals (mail of contacts with open deals, largest deal first), "
        "contacts, leads or others (newest first); all when not given.",
    )
    folder: Id | None = Field(None, description="A folder of your mailboxes; your Inbox if not.")
    unread: bool | None = Field(
        None, description="Only conversations with unread (true) or without unread (false) mail."
    )
    tag: TagName | None = Field(
        None, description=TAG_FILTER + " A conversation with a message so tagged."
    )


class RecordRefOut(Schema):
    module: str
    id: int
    name: str


class InboxItemOut(Schema):
    stream: Stream
    thread_id: int | None = Field(description="None while the message is not yet parsed.")
    message_id: int = Field(description="The conversation's newest message in the folder.")
    folder_id: int
    subject: str
    from_address: str
    from_name: str
    date: datetime | None
    snippet: str
    unread: bool = Field(description="Any of its messages in the folder is unread.")
    flagged: bool = Field(description="Any of its messages in the folder is flagged.")
    message_count: int = Field(description="Its messages in the folder.")
    records: list[RecordRefOut] = Field(description="Records it is linked to that you may view.")
    tags: list[str] = Field(
        description="The tags of its messages in the folder, by name (alphabetical)."
    )
    url: str = Field(description="The message's page in crmail.")
    intelligence: IntelligenceOut | None = Field(
        None, description="Of the conversation's newest message: " + INTELLIGENCE_DOC
    )


class FolderOut(Schema):
    id: int
    mailbox_id: int
    name: str
    role: str = Field(description="inbox, sent, drafts, trash, junk, archive, or empty.")
    unread: int
    total: int


@router.get(
    "",
    response={200: Page[InboxItemOut]},
    openapi_extra=errors_doc(401, 404, 422),
    summary="Your inbox, as conversations",
)
def list_inbox(request: HttpRequest, params: Query[InboxParams]) -> dict[str, Any]:
    """Conversations (one per thread) of your Inbox, or of ``folder``: each with its newest
    message there, how many messages it has, whether any is unread or flagged, its stream
    and the records it is linked to that you may view. ``count`` counts conversations."""
    user = current_user(request)
    folder = None
    if params.folder is not None:
        try:
            folder = inbox.own_folder(user, params.folder)
        except inbox.NoSuchFolder:
            raise Http404 from None
    limit = min(params.limit, MAX_LIMIT)
    got = inbox.page(
        user,
        stream=params.stream,
        folder=folder,
        unread=params.unread,
        tag=params.tag,
        limit=limit,
        offset=params.offset,
        within=within(user, filter_of(params)),
    )
    before, _, after = request.build_absolute_uri(reverse("web:message", args=[0])).rpartition(
        "/0/"
    )
    items = [
        {
            "stream": e.stream,
            "thread_id": e.thread_id,
            "message_id": e.message.pk,
            "folder_id": e.folder_id,
            "subject": e.message.subject,
            "from_address": e.message.from_address,
            "from_name": e.message.from_name,
            "date": e.message.date,
            "snippet": e.message.snippet,
            "unread": e.unread,
            "flagged": e.flagged,
            "message_count": e.count,
            "records": [{"module": r.module, "id": r.id, "name": r.name} for r in e.records],
            "tags": e.tags,
            "url": f"{before}/{e.message.pk}/{after}",
        }
        for e in got.items
    ]
    return {
        "items": attach(user, items, "message_id"),
        "count": got.count,
        "limit": limit,
        "offset": params.offset,
    }


@router.get(
    "/folders",
    response={200: list[FolderOut]},
    openapi_extra=errors_doc(401),
    summary="Your folders with unread counts",
)
def list_folders(request: HttpRequest) -> list[dict[str, Any]]:
    """The folders of your active mailboxes: Inbox, Sent, Drafts, Trash, Junk, Archive,
    then the others by name, each with its unread and total messages."""
    user = current_user(request)
    return [
        {
            "id": c.folder.pk,
            "mailbox_id": c.folder.mailbox_id,
            "name": c.folder.name,
            "role": c.folder.role,
            "unread": c.unread,
            "total": c.total,
        }
        for c in inbox.folders(user)
    ]
