"""``/contacts``: people the organisation works with."""

from __future__ import annotations

from django.db.models import QuerySet

from crmail.api import records
from crmail.api.resource import RecordResource, record_router
from crmail.api.schemas import ContactFilters, ContactIn, ContactOut, ContactPatch
from crmail.crm.models import Contact


def narrow(qs: QuerySet[Contact], filters: ContactFilters) -> QuerySet[Contact]:
    qs = records.filter_by_email(qs, filters.email)
    if filters.account is not None:
        qs = qs.filter(account_id=filters.account)
    return qs


RESOURCE = RecordResource(
    module="contacts",
    model=Contact,
    singular="contact",
    article="a",
    schema_in=ContactIn,
    schema_out=ContactOut,
    schema_patch=ContactPatch,
    filters=ContactFilters,
    ordering={
        "name": ("last_name", "first_name"),
        "created_at": ("created_at",),
        "modified_at": ("modified_at",),
    },
    search_fields=("first_name", "last_name"),
    narrow=narrow,
    prefetch=("emails",),
)
router = record_router(RESOURCE)
