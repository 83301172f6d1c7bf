"""``/templates``: email templates (SPEC F3), and a template filled for a record.

You read your own templates and the shared ones; another user's personal template answers
404. Only its owner or an administrator changes or deletes a template (403 otherwise).
Saving checks the merge fields: an unknown one answers 422 naming it. ``POST
/templates/{id}/preview`` fills the template for a record you may see, as ``POST
/messages/send`` with ``template_id`` would send it. Written by
``crmail.emailtemplates.actions``, filled by ``crmail.emailtemplates.merge``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.errors import Forbidden, Invalid
from crmail.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    Id,
    Input,
    ListParams,
    Page,
    RecordRef,
    UserRef,
)
from crmail.emailtemplates import actions, merge
from crmail.emailtemplates.models import BODY_MAX, NAME_MAX, SUBJECT_MAX, EmailTemplate
from crmail.people.models import User

FIELD_DOC = "Merge fields: " + ", ".join(f"`{name}`" for name, _ in merge.field_list()) + "."

router = Router(tags=["Email templates"])


class TemplateOut(Schema):
    id: int
    name: str
    subject: str
    body: str = Field(description="Plain text. " + FIELD_DOC)
    shared: bool = Field(description="Everyone may use it; otherwise only its owner.")
    owner: UserRef
    may_change: bool = Field(description="You may change or delete it (owner or admin).")
    created_at: datetime
    modified_at: datetime


class TemplateIn(Input):
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    subject: Annotated[str, Field(max_length=SUBJECT_MAX)] = Field(
        "", description="One line. " + FIELD_DOC
    )
    body: Annotated[str, Field(max_length=BODY_MAX)] = Field("", description=FIELD_DOC)
    shared: bool = Field(False, description="Everyone may use it; otherwise only you.")


class TemplatePatch(Input):
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)] | None = None
    subject: Annotated[str, Field(max_length=SUBJECT_MAX)] | None = None
    body: Annotated[str, Field(max_length=BODY_MAX)] | None = None
    shared: bool | None = None


RecordText = Annotated[
    str,
    Field(max_length=40, description="`module:id`, as `contacts:12`.", examples=["contacts:12"]),
]


class PreviewIn(Input):
    record: RecordText | RecordRef | None = Field(
        None,
        description="The record to merge, one you may see: `contacts:12`, or "
        '`{"module": "contacts", "id": 12}`. Without it, only `User` fields can be filled.',
    )


class PreviewOut(Schema):
    subject: str
    body: str


class TemplateFilters(ListParams):
    pass


def template_out(row: EmailTemplate, user: User) -> dict[str, Any]:
    return {
        "id": row.pk,
        "name": row.name,
        "subject": row.subject,
        "body": row.body,
        "shared": row.shared,
        "owner": {"id": row.owner.pk, "name": row.owner.name, "email": row.owner.email},
        "may_change": actions.may_change(user, row),
        "created_at": row.created_at,
        "modified_at": row.modified_at,
    }


@contextmanager
def template_errors() -> Iterator[None]:
    """The writers' refusals as the API's answers (422 naming fields, 403 in words)."""
    try:
        yield
    except actions.Invalid as exc:
        raise Invalid(exc.errors) from None
    except actions.NotAllowed as exc:
        raise Forbidden(str(exc)) from None


def merge_records(user: User, record: str | RecordRef | None) -> merge.MergeRecords:
    """The records to merge for ``record`` (a body field): 422 naming ``record`` when it is
    not written right or is not a record the caller may see."""
    if record is None:
        return merge.records_for(user, None)
    ref = merge.parse_record_ref(record) if isinstance(record, str) else (record.module, record.id)
    if ref is None:
        raise Invalid.one("record", "Write the record as module:id, as contacts:12.")
    found = merge.find_record(user, *ref)
    if found is None:
        raise Invalid.one("record", f"There is no {ref[0][:-1]} {ref[1]} that you may see.")
    return merge.records_for(user, found)


def fill(template: EmailTemplate, records: merge.MergeRecords) -> merge.Rendered:
    """The template filled; 422 naming ``subject`` or ``body`` when it cannot be."""
    try:
        return merge.render_template(template.subject, template.body, records)
    except merge.MergeError as exc:
        raise Invalid.one(exc.part, str(exc)) from None


@router.get(
    "",
    response={200: Page[TemplateOut]},
    openapi_extra=READ_ERRORS,
    summary="List the templates you may use",
)
def list_templates(request: HttpRequest, filters: Query[TemplateFilters]) -> dict[str, Any]:
    """Yours and the shared ones, by name."""
    user = current_user(request)
    page = records.page(actions.readable(user).order_by("name", "pk"), filters)
    page["items"] = [template_out(row, user) for row in page["items"]]
    return page


@router.post("", response={201: TemplateOut}, openapi_extra=WRITE_ERRORS, summary="Add a template")
def create_template(request: HttpRequest, payload: TemplateIn) -> dict[str, Any]:
    """Yours; `shared` lets everyone use it. An unknown merge field answers 422 naming it."""
    user = current_user(request)
    with template_errors():
        row = actions.do_create_template(user, **payload.model_dump())
    return template_out(row, user)


@router.get(
    "/{id}", response={200: TemplateOut}, openapi_extra=READ_ERRORS, summary="Read a template"
)
def read_template(request: HttpRequest, id: Id) -> dict[str, Any]:
    user = current_user(request)
    return template_out(records.get_or_404(actions.readable(user), id), user)


@router.patch(
    "/{id}", response={200: TemplateOut}, openapi_extra=WRITE_ERRORS, summary="Change a template"
)
def update_template(request: HttpRequest, id: Id, payload: TemplatePatch) -> dict[str, Any]:
    """Its owner or an administrator. Absent or null fields stay as they are."""
    user = current_user(request)
    row = records.get_or_404(actions.readable(user), id)
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    with template_errors():
        actions.do_update_template(user, row, changes)
    return template_out(row, user)


@router.delete(
    "/{id}", response={204: None}, openapi_extra=WRITE_ERRORS, summary="Delete a template"
)
def delete_template(request: HttpRequest, id: Id) -> None:
    """Its owner or an administrator."""
    user = current_user(request)
    row = records.get_or_404(actions.readable(user), id)
    with template_errors():
        actions.do_delete_template(user, row)


@router.post(
    "/{id}/preview",
    response={200: PreviewOut},
    openapi_extra=WRITE_ERRORS,
    summary="Fill a template for a record",
)
def preview_template(request: HttpRequest, id: Id, payload: PreviewIn) -> dict[str, Any]:
    """The subject and body as they would be sent from `record` by you. A field that cannot
    be filled (unknown, or its record missing or one you may not see) answers 422 naming it."""
    user = current_user(request)
    row = records.get_or_404(actions.readable(user), id)
    done = fill(row, merge_records(user, payload.record))
    return {"subject": done.subject, "body": done.body}
