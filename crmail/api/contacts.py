"""``/contacts``: people the organisation works with."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    ContactFilters,
    ContactIn,
    ContactOut,
    ContactPatch,
    Id,
    Page,
)
from crmail.crm.models import Contact
from crmail.people import access
from crmail.people.models import User

router = Router(tags=["Contacts"])

ORDERING = {
    "name": ("last_name", "first_name"),
    "created_at": ("created_at",),
    "modified_at": ("modified_at",),
}


def loaded(qs: QuerySet[Contact]) -> QuerySet[Contact]:
    return qs.select_related("owner").prefetch_related("emails")


def visible(user: User) -> QuerySet[Contact]:
    return loaded(access.visible(user, Contact))


@router.get(
    "", response={200: Page[ContactOut]}, openapi_extra=READ_ERRORS, summary="List contacts"
)
def list_contacts(request: HttpRequest, filters: Query[ContactFilters]) -> dict:
    """The contacts you may see, a page at a time."""
    qs = records.filter_records(
        visible(current_user(request)), filters, ("first_name", "last_name")
    )
    qs = records.filter_by_email(qs, filters.email)
    if filters.account is not None:
        qs = qs.filter(account_id=filters.account)
    return records.page(records.order(qs, filters.ordering, ORDERING), filters)


@router.post("", response={201: ContactOut}, openapi_extra=WRITE_ERRORS, summary="Create a contact")
def create_contact(request: HttpRequest, payload: ContactIn) -> Contact:
    contact = records.create(current_user(request), "contacts", payload.model_dump())
    return records.reload(loaded(Contact.objects.all()), contact)


@router.get(
    "/{id}", response={200: ContactOut}, openapi_extra=READ_ERRORS, summary="Read a contact"
)
def read_contact(request: HttpRequest, id: Id) -> Contact:
    return records.get_or_404(visible(current_user(request)), id)


@router.patch(
    "/{id}", response={200: ContactOut}, openapi_extra=WRITE_ERRORS, summary="Change a contact"
)
def update_contact(request: HttpRequest, id: Id, payload: ContactPatch) -> Contact:
    """Change the fields given; the others keep their values."""
    user = current_user(request)
    contact = records.get_or_404(visible(user), id)
    records.update(user, contact, payload.model_dump(exclude_unset=True))
    return records.reload(loaded(Contact.objects.all()), contact)


@router.delete(
    "/{id}", response={204: None}, openapi_extra=WRITE_ERRORS, summary="Delete a contact"
)
def delete_contact(request: HttpRequest, id: Id) -> None:
    user = current_user(request)
    records.delete(user, records.get_or_404(visible(user), id))
    return None
