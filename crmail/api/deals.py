"""``/deals``: opportunities moving through a pipeline's stages."""

from __future__ import annotations

from django.db.models import QuerySet

from crmail.api.resource import RecordResource, record_router
from crmail.api.schemas import DealFilters, DealIn, DealOut, DealPatch
from crmail.crm.models import Deal


def narrow(qs: QuerySet[Deal], filters: DealFilters) -> QuerySet[Deal]:
    for field in ("pipeline", "stage", "contact", "account"):
        value = getattr(filters, field)
        if value is not None:
            qs = qs.filter(**{f"{field}_id": value})
    return qs


RESOURCE = RecordResource(
    module="deals",
    model=Deal,
    singular="deal",
    article="a",
    schema_in=DealIn,
    schema_out=DealOut,
    schema_patch=DealPatch,
    filters=DealFilters,
    ordering={
        "name": ("name",),
        "amount": ("amount",),
        "closing_date": ("closing_date",),
        "created_at": ("created_at",),
        "modified_at": ("modified_at",),
    },
    search_fields=("name",),
    narrow=narrow,
    select=("owner", "stage"),
    list_doc="The deals you may see, a page at a time, most recently changed first.",
    create_doc="Create a deal; a contact or account must be one you may see.",
)
router = record_router(RESOURCE)
