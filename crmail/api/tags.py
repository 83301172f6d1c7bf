"""Tags on messages (SPEC F13): ``/messages/{id}/tags`` puts and takes them off, ``/tags``
lists them. Written by ``crmail.mail.tags``.

Whoever may see a message tags it (404 otherwise, as for reading it); a tag is 1 to 100
characters, one line, the same tag whatever its case. ``GET /tags`` lists only the tags
of mail you may see (``sharing.tags``): a tag's name says something about its mail.
"""

from __future__ import annotations

from typing import Annotated, Any

from django.http import Http404, HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.errors import Invalid
from crmail.api.schemas import READ_ERRORS, WRITE_ERRORS, Id, Input, ListParams, Page, QueryText
from crmail.mail import tags
from crmail.mail.models import TAG_NAME_MAX
from crmail.mail.tags import MAX_TAGS_AT_ONCE
from crmail.people.models import User
from crmail.sharing.tags import visible_tags
from crmail.sharing.visibility import may_see_message

message_router = Router(tags=["Messages"])
router = Router(tags=["Tags"])


class TagsIn(Input):
    tags: list[Annotated[str, Field(max_length=TAG_NAME_MAX)]] = Field(
        min_length=1,
        max_length=MAX_TAGS_AT_ONCE,
        description="Names of tags, made as needed; a tag the message holds already stays "
        "as it is.",
    )


class MessageTagsOut(Schema):
    id: int = Field(description="The message.")
    tags: list[str] = Field(description="Its tags after the change, alphabetical.")


class TagOut(Schema):
    name: str


class TagFilters(ListParams):
    q: QueryText | None = Field(None, description="Tags whose name starts so (any case).")


def _message_id(user: User, id: int) -> int:
    if not may_see_message(user, id):
        raise Http404
    return id


def _tags_out(message_id: int) -> dict[str, Any]:
    return {"id": message_id, "tags": tags.tags_of([message_id]).get(message_id, [])}


@message_router.post(
    "/{id}/tags",
    response={200: MessageTagsOut},
    openapi_extra=WRITE_ERRORS,
    summary="Tag a message",
)
def tag_message(request: HttpRequest, id: Id, payload: TagsIn) -> dict[str, Any]:
    """Put tags on a message you may see; tagging twice changes nothing. A name that cannot
    be a tag (empty, longer than 100 characters, more than one line) answers 422 naming
    ``tags``."""
    user = current_user(request)
    message_id = _message_id(user, id)
    try:
        tags.tag_messages([message_id], payload.tags, actor=user)
    except tags.TagInvalid as exc:
        raise Invalid.one("tags", str(exc)) from None
    return _tags_out(message_id)


@message_router.delete(
    "/{id}/tags/{path:name}",
    response={204: None},
    openapi_extra=READ_ERRORS,
    summary="Take a tag off a message",
)
def untag_message(request: HttpRequest, id: Id, name: str) -> None:
    """Take the tag ``name`` (in any case) off a message you may see; 404 when the message
    does not hold it."""
    user = current_user(request)
    message_id = _message_id(user, id)
    try:
        removed = tags.untag_messages([message_id], [name], actor=user)
    except tags.TagInvalid:
        raise Http404 from None
    if not removed:
        raise Http404


@router.get("", response={200: Page[TagOut]}, openapi_extra=READ_ERRORS, summary="List tags")
def list_tags(request: HttpRequest, filters: Query[TagFilters]) -> dict[str, Any]:
    """The tags on mail you may see, alphabetical; ``q``: those whose name starts so."""
    user = current_user(request)
    qs = visible_tags(user)
    if filters.q:
        qs = qs.filter(key__startswith=tags.key_of(filters.q))
    page = records.page(qs, filters)
    page["items"] = [{"name": t.name} for t in page["items"]]
    return page
