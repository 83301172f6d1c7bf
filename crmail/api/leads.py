"""``/leads``: people who may become customers."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    Id,
    LeadFilters,
    LeadIn,
    LeadOut,
    LeadPatch,
    Page,
)
from crmail.crm.models import Lead
from crmail.people import access
from crmail.people.models import User

router = Router(tags=["Leads"])

ORDERING = {
    "name": ("last_name", "first_name"),
    "created_at": ("created_at",),
    "modified_at": ("modified_at",),
}


def loaded(qs: QuerySet[Lead]) -> QuerySet[Lead]:
    return qs.select_related("owner").prefetch_related("emails")


def visible(user: User) -> QuerySet[Lead]:
    return loaded(access.visible(user, Lead))


@router.get("", response={200: Page[LeadOut]}, openapi_extra=READ_ERRORS, summary="List leads")
def list_leads(request: HttpRequest, filters: Query[LeadFilters]) -> dict:
    """The leads you may see, a page at a time; ``q`` also searches the company."""
    qs = records.filter_records(
        visible(current_user(request)), filters, ("first_name", "last_name", "company")
    )
    qs = records.filter_by_email(qs, filters.email)
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    return records.page(records.order(qs, filters.ordering, ORDERING), filters)


@router.post("", response={201: LeadOut}, openapi_extra=WRITE_ERRORS, summary="Create a lead")
def create_lead(request: HttpRequest, payload: LeadIn) -> Lead:
    lead = records.create(current_user(request), "leads", payload.model_dump())
    return records.reload(loaded(Lead.objects.all()), lead)


@router.get("/{id}", response={200: LeadOut}, openapi_extra=READ_ERRORS, summary="Read a lead")
def read_lead(request: HttpRequest, id: Id) -> Lead:
    return records.get_or_404(visible(current_user(request)), id)


@router.patch("/{id}", response={200: LeadOut}, openapi_extra=WRITE_ERRORS, summary="Change a lead")
def update_lead(request: HttpRequest, id: Id, payload: LeadPatch) -> Lead:
    """Change the fields given; the others keep their values."""
    user = current_user(request)
    lead = records.get_or_404(visible(user), id)
    records.update(user, lead, payload.model_dump(exclude_unset=True))
    return records.reload(loaded(Lead.objects.all()), lead)


@router.delete("/{id}", response={204: None}, openapi_extra=WRITE_ERRORS, summary="Delete a lead")
def delete_lead(request: HttpRequest, id: Id) -> None:
    user = current_user(request)
    records.delete(user, records.get_or_404(visible(user), id))
    return None
