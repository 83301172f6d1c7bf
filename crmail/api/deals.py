"""``/deals``: opportunities moving through a pipeline's stages."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    DealFilters,
    DealIn,
    DealOut,
    DealPatch,
    Id,
    Page,
)
from crmail.crm.models import Deal
from crmail.people import access
from crmail.people.models import User

router = Router(tags=["Deals"])

ORDERING = {
    "name": ("name",),
    "amount": ("amount",),
    "closing_date": ("closing_date",),
    "created_at": ("created_at",),
    "modified_at": ("modified_at",),
}


def loaded(qs: QuerySet[Deal]) -> QuerySet[Deal]:
    return qs.select_related("owner", "stage")


def visible(user: User) -> QuerySet[Deal]:
    return loaded(access.visible(user, Deal))


@router.get("", response={200: Page[DealOut]}, openapi_extra=READ_ERRORS, summary="List deals")
def list_deals(request: HttpRequest, filters: Query[DealFilters]) -> dict:
    """The deals you may see, a page at a time, most recently changed first."""
    qs = records.filter_records(visible(current_user(request)), filters, ("name",))
    for field in ("pipeline", "stage", "contact", "account"):
        value = getattr(filters, field)
        if value is not None:
            qs = qs.filter(**{f"{field}_id": value})
    return records.page(records.order(qs, filters.ordering, ORDERING), filters)


@router.post("", response={201: DealOut}, openapi_extra=WRITE_ERRORS, summary="Create a deal")
def create_deal(request: HttpRequest, payload: DealIn) -> Deal:
    """Create a deal; a contact or account must be one you may see."""
    deal = records.create(current_user(request), "deals", payload.model_dump())
    return records.reload(loaded(Deal.objects.all()), deal)


@router.get("/{id}", response={200: DealOut}, openapi_extra=READ_ERRORS, summary="Read a deal")
def read_deal(request: HttpRequest, id: Id) -> Deal:
    return records.get_or_404(visible(current_user(request)), id)


@router.patch("/{id}", response={200: DealOut}, openapi_extra=WRITE_ERRORS, summary="Change a deal")
def update_deal(request: HttpRequest, id: Id, payload: DealPatch) -> Deal:
    """Change the fields given; the others keep their values."""
    user = current_user(request)
    deal = records.get_or_404(visible(user), id)
    records.update(user, deal, payload.model_dump(exclude_unset=True))
    return records.reload(loaded(Deal.objects.all()), deal)


@router.delete("/{id}", response={204: None}, openapi_extra=WRITE_ERRORS, summary="Delete a deal")
def delete_deal(request: HttpRequest, id: Id) -> None:
    user = current_user(request)
    records.delete(user, records.get_or_404(visible(user), id))
    return None
