"""``/leads``: people who may become customers."""

from __future__ import annotations

from django.db.models import QuerySet

from crmail.api import records
from crmail.api.resource import RecordResource, record_router
from crmail.api.schemas import LeadFilters, LeadIn, LeadOut, LeadPatch
from crmail.crm.models import Lead


def narrow(qs: QuerySet[Lead], filters: LeadFilters) -> QuerySet[Lead]:
    qs = records.filter_by_email(qs, filters.email)
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    return qs


RESOURCE = RecordResource(
    module="leads",
    model=Lead,
    singular="lead",
    article="a",
    schema_in=LeadIn,
    schema_out=LeadOut,
    schema_patch=LeadPatch,
    filters=LeadFilters,
    ordering={
        "name": ("last_name", "first_name"),
        "created_at": ("created_at",),
        "modified_at": ("modified_at",),
    },
    search_fields=("first_name", "last_name", "company"),
    narrow=narrow,
    prefetch=("emails",),
    list_doc="The leads you may see, a page at a time; ``q`` also searches the company.",
)
router = record_router(RESOURCE)
