"""Email intelligence in the API (SPEC F15, decision 061): the ``intelligence`` object of
messages and list items (only for messages the caller may open, through
``intelligence.queries``), the filters of lists, and the answers to suggestions:

- ``GET /messages/{id}/intelligence/suggestions``: signature details offered as updates
  to the lead or contact who wrote it, meeting times offered as tasks, and their answers;
- ``POST /messages/{id}/intelligence/signature/accept`` (the ticked ``fields`` only) and
  ``…/signature/dismiss``;
- ``POST /messages/{id}/intelligence/meetings/{index}/accept`` (a task on a record of the
  message) and ``…/meetings/{index}/dismiss``.

A message the caller may not open is not found (404); an answer given already is 409.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, Literal

from django.http import Http404, HttpRequest
from ninja import Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from crmail.api.auth import current_user
from crmail.api.errors import Invalid
from crmail.api.schemas import Id, Input, IntelligenceFilters, errors_doc
from crmail.intelligence import queries, suggestions
from crmail.mail.models import Message
from crmail.people.models import User
from crmail.sharing.visibility import may_see_message

router = Router(tags=["Email intelligence"])

ANSWER_ERRORS = errors_doc(400, 401, 403, 404, 409, 422)
PersonModule = Literal["contacts", "leads"]
RecordModule = Literal["leads", "contacts", "accounts", "deals"]
DetailName = Literal["name", "title", "phone", "mobile", "company"]


def filter_of(params: IntelligenceFilters) -> queries.Filter:
    return queries.Filter(
        sentiment=params.sentiment,
        intent=params.intent,
        open_deals=params.deal == "open",
        this_week=params.period == "week",
    )


def attach(user: User, items: list[dict[str, Any]], key: str = "id") -> list[dict[str, Any]]:
    """Each item with its ``intelligence`` (null when none may be shown): one query for
    visibility, one for the results, for the page."""
    found = queries.for_messages(user, [i[key] for i in items if i.get(key)])
    for item in items:
        item["intelligence"] = found.get(item[key]) if item.get(key) else None
    return items


# --------------------------------------------------------------------------- suggestions


class DetailOut(Schema):
    field: DetailName
    current: str = Field(description="What the record holds now.")
    found: str = Field(description="What the signature says.")


class SignatureOfferOut(Schema):
    module: PersonModule
    record_id: int
    record_name: str
    details: list[DetailOut] = Field(description="The details that differ from the record.")
    state: Literal["offered", "accepted", "dismissed"]
    applied: list[str] = Field(description="The details applied, once accepted.")


class MeetingOfferOut(Schema):
    index: int
    start: str = Field(description="ISO 8601, with its offset.")
    text: str
    approximate: bool
    state: Literal["offered", "accepted", "dismissed"]
    task_id: int | None = Field(description="The task made of it, once accepted.")


class SuggestionsOut(Schema):
    signature: list[SignatureOfferOut]
    meetings: list[MeetingOfferOut]
    records: list[dict[str, Any]] = Field(
        description="The records of the message a meeting may go on ({module, id, name})."
    )


class SignatureAcceptIn(Input):
    module: PersonModule
    record_id: Id
    fields: list[DetailName] = Field(
        min_length=1, max_length=5, description="The details to apply (ticked)."
    )


class SignatureDismissIn(Input):
    module: PersonModule
    record_id: Id


class MeetingAcceptIn(Input):
    module: RecordModule
    record_id: Id


class AnswerOut(Schema):
    state: Literal["accepted", "dismissed"]
    task_id: int | None = None
    due: date | None = None
    applied: list[str] = []


def _message(request: HttpRequest, id: int) -> tuple[User, Message]:
    user = current_user(request)
    message = Message.objects.defer("body_text").filter(pk=id).first()
    if message is None:
        raise Http404
    return user, message


@contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except suggestions.NoSuchSuggestion:
        raise Http404 from None
    except suggestions.AlreadyDecided as exc:
        raise HttpError(409, str(exc)) from None
    except suggestions.BadAnswer as exc:
        raise Invalid.one(exc.field, str(exc)) from None


@router.get(
    "/{id}/intelligence/suggestions",
    response={200: SuggestionsOut},
    openapi_extra=errors_doc(401, 404, 422),
    summary="A message's suggestions",
)
def list_suggestions(request: HttpRequest, id: Id) -> dict[str, Any]:
    """Signature details offered as updates to the lead or contact who wrote the message
    (those that differ from the record), and meeting times offered as tasks, with their
    answers. Empty lists when there are none (or intelligence is off)."""
    user, message = _message(request, id)
    if not may_see_message(user, message):
        raise Http404

    def state(decision: Any) -> str:
        return "offered" if decision is None else decision.state

    return {
        "signature": [
            {
                "module": o.module,
                "record_id": o.record.pk,
                "record_name": str(o.record),
                "details": [
                    {"field": d.name, "current": d.current, "found": d.found} for d in o.details
                ],
                "state": state(o.decision),
                "applied": list(o.decision.fields) if o.decision else [],
            }
            for o in suggestions.signature_offers(user, message)
        ],
        "meetings": [
            {
                "index": o.index,
                "start": o.start.isoformat(),
                "text": o.text,
                "approximate": o.approximate,
                "state": state(o.decision),
                "task_id": o.decision.task_id if o.decision else None,
            }
            for o in suggestions.meeting_offers(user, message)
        ],
        "records": [
            {"module": m, "id": r.pk, "name": str(r)}
            for m, r in suggestions.meeting_targets(user, message)
        ],
    }


@router.post(
    "/{id}/intelligence/signature/accept",
    response={200: AnswerOut},
    openapi_extra=ANSWER_ERRORS,
    summary="Apply signature details to a contact or lead",
)
def accept_signature(request: HttpRequest, id: Id, payload: SignatureAcceptIn) -> dict[str, Any]:
    """Apply the ``fields`` you ticked (name, title, phone, mobile, company) of the
    message's signature to the record; the record's other fields stay as they are."""
    user, message = _message(request, id)
    with _answers():
        suggestions.accept_signature(
            user, message, payload.module, payload.record_id, payload.fields
        )
    return {"state": "accepted", "applied": list(dict.fromkeys(payload.fields))}


@router.post(
    "/{id}/intelligence/signature/dismiss",
    response={200: AnswerOut},
    openapi_extra=ANSWER_ERRORS,
    summary="Dismiss signature details",
)
def dismiss_signature(request: HttpRequest, id: Id, payload: SignatureDismissIn) -> dict[str, Any]:
    user, message = _message(request, id)
    with _answers():
        suggestions.dismiss_signature(user, message, payload.module, payload.record_id)
    return {"state": "dismissed"}


@router.post(
    "/{id}/intelligence/meetings/{index}/accept",
    response={201: AnswerOut},
    openapi_extra=ANSWER_ERRORS,
    summary="Make a meeting time a task",
)
def accept_meeting(request: HttpRequest, id: Id, index: int, payload: MeetingAcceptIn) -> Status:
    """A task for you on the record (one the message is on), due on the meeting's day."""
    user, message = _message(request, id)
    with _answers():
        task = suggestions.accept_meeting(user, message, index, payload.module, payload.record_id)
    return Status(201, {"state": "accepted", "task_id": task.pk, "due": task.due})


@router.post(
    "/{id}/intelligence/meetings/{index}/dismiss",
    response={200: AnswerOut},
    openapi_extra=ANSWER_ERRORS,
    summary="Dismiss a meeting time",
)
def dismiss_meeting(request: HttpRequest, id: Id, index: int) -> dict[str, Any]:
    user, message = _message(request, id)
    with _answers():
        suggestions.dismiss_meeting(user, message, index)
    return {"state": "dismissed"}
