"""``GET /search``: the mail the caller may open that matches a query (SPEC F14 search).

The query reads like a mail client's search box (``crmail.search.query``); the filters
given as parameters are added to it. Results go through the visibility layer
(``crmail.search.queries``): one item per thread, its best match, best first.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from django.urls import reverse
from ninja import Query, Router, Schema
from pydantic import AfterValidator, Field

from crmail.api.auth import current_user
from crmail.api.errors import Invalid
from crmail.api.intelligence import attach
from crmail.api.schemas import (
    INTELLIGENCE_DOC,
    MAX_LIMIT,
    TAG_FILTER,
    TAGS_DOC,
    Id,
    IntelligenceFilters,
    IntelligenceOut,
    ListParams,
    Page,
    QueryText,
    TagName,
    errors_doc,
)
from crmail.intelligence.queries import week_start
from crmail.mail.tags import tags_of
from crmail.search.queries import Filters, search_messages
from crmail.search.query import QueryError, parse, person

router = Router(tags=["Search"])

_RECORD = re.compile(r"(leads|contacts|accounts|deals):([1-9][0-9]{0,18})")


def _record(value: str) -> str:
    match = _RECORD.fullmatch(value)
    if not match or int(match.group(2)) > 2**63 - 1:
        raise ValueError(
            "Give a record as MODULE:ID, e.g. contacts:12 (leads, contacts, accounts or deals)."
        )
    return value


class SearchParams(ListParams, IntelligenceFilters):
    q: QueryText = Field(
        "",
        description="Words (all must match; the last may be the start of a word), "
        '"quoted phrases", and from:, to:, tag:, has:attachment, is:unread, is:read, in:FOLDER, '
        "after:YYYY-MM-DD, before:YYYY-MM-DD, sentiment:NEGATIVE, intent:COMPLAINT, deal:open.",
    )
    sender: QueryText | None = Field(
        None, alias="from", description="A sender's name or address (or part of it)."
    )
    to: QueryText | None = Field(None, description="A recipient's name or address (To, Cc, Bcc).")
    after: date | None = Field(None, description="Sent on this day or later.")
    before: date | None = Field(None, description="Sent before this day.")
    has_attachment: bool | None = None
    folder: Id | None = Field(None, description="In this folder of one of your mailboxes.")
    mailbox: Id | None = Field(None, description="In this mailbox of yours.")
    unread: bool | None = Field(None, description="Unread (true) or read (false) in your mailbox.")
    record: Annotated[str, Field(max_length=40), AfterValidator(_record)] | None = Field(
        None, description="On this record: contacts:ID, leads:ID, accounts:ID or deals:ID."
    )
    tag: TagName | None = Field(None, description=TAG_FILTER)
    source: Literal["dropbox", "crmail"] | None = Field(
        None,
        description="dropbox: received at a BCC Dropbox; crmail: sent from crmail "
        "(as source: in q).",
    )


class SearchHitOut(Schema):
    id: int
    thread_id: int | None
    subject: str
    subject_html: str = Field(description="The subject as HTML, matching words in <mark>.")
    snippet_html: str = Field(description="Text around the first match, escaped, in <mark>.")
    from_address: str
    from_name: str
    date: datetime | None
    has_attachments: bool
    thread_matches: int = Field(description="Messages of this thread that match.")
    tags: list[str] = Field(description=TAGS_DOC)
    url: str = Field(description="The message's page in crmail.")
    intelligence: IntelligenceOut | None = Field(None, description=INTELLIGENCE_DOC)


class SearchPage(Page[SearchHitOut]):
    more: bool = Field(
        False, description="More threads match than count says (count is a lower bound)."
    )


@router.get(
    "",
    response={200: SearchPage},
    openapi_extra=errors_doc(401, 422),
    summary="Search mail",
)
def search(request: HttpRequest, params: Query[SearchParams]) -> dict[str, Any]:
    """Mail you may open that matches ``q`` and every filter: one item per thread (its best
    matching message, with how many of its messages match), best match first. ``count``
    counts threads; when ``more`` is true, more threads match than ``count`` (a common
    word on a large store: the page is exact, the count a lower bound; further pages
    continue). Without ``q`` and filters the list is empty. A record you may not see
    finds nothing."""
    user = current_user(request)
    try:
        query = parse(params.q)
    except QueryError as exc:
        raise Invalid.one("q", str(exc)) from None
    for name, value in (("from", params.sender), ("to", params.to)):
        if value is not None:
            try:
                person(name, value)
            except QueryError as exc:
                raise Invalid.one(name, str(exc)) from None
    record = None
    if params.record:
        module, _, pk = params.record.partition(":")
        record = (module, int(pk))
    filters = Filters(
        sender=params.sender,
        recipient=params.to,
        after=params.after,
        before=params.before,
        has_attachment=params.has_attachment,
        folder_id=params.folder,
        mailbox_id=params.mailbox,
        unread=params.unread,
        record=record,
        tag=params.tag,
        source=params.source,
        sentiment=params.sentiment,
        intent=params.intent,
        open_deals=params.deal == "open",
    )
    if params.period == "week":
        monday = week_start().date()
        filters = replace(filters, after=max(monday, params.after) if params.after else monday)
    limit = min(params.limit, MAX_LIMIT)
    results = search_messages(user, query, filters, limit=limit, offset=params.offset)
    held = tags_of([h.message.pk for h in results.hits])
    before, _, after = request.build_absolute_uri(reverse("web:message", args=[0])).rpartition(
        "/0/"
    )
    items = [
        {
            "id": h.message.pk,
            "thread_id": h.message.thread_id,
            "subject": h.message.subject,
            "subject_html": str(h.subject_html),
            "snippet_html": str(h.snippet_html),
            "from_address": h.message.from_address,
            "from_name": h.message.from_name,
            "date": h.message.date,
            "has_attachments": h.message.has_attachments,
            "thread_matches": h.in_thread,
            "tags": held.get(h.message.pk, []),
            "url": f"{before}/{h.message.pk}/{after}",
        }
        for h in results.hits
    ]
    return {
        "items": attach(user, items),
        "count": results.count,
        "more": results.more,
        "limit": limit,
        "offset": params.offset,
    }
