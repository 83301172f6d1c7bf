"""``/accounts``: companies and organisations."""

from __future__ import annotations

from django.db.models import QuerySet

from crmail.api.resource import RecordResource, record_router
from crmail.api.schemas import AccountFilters, AccountIn, AccountOut, AccountPatch
from crmail.crm.addresses import normalize_domain
from crmail.crm.models import Account


def narrow(qs: QuerySet[Account], filters: AccountFilters) -> QuerySet[Account]:
    if filters.domain is not None:
        qs = qs.filter(domain=normalize_domain(filters.domain))
    return qs


RESOURCE = RecordResource(
    module="accounts",
    model=Account,
    singular="account",
    article="an",
    schema_in=AccountIn,
    schema_out=AccountOut,
    schema_patch=AccountPatch,
    filters=AccountFilters,
    ordering={
        "name": ("name",),
        "domain": ("domain",),
        "created_at": ("created_at",),
        "modified_at": ("modified_at",),
    },
    search_fields=("name",),
    narrow=narrow,
    list_doc="The accounts you may see, a page at a time; ``domain`` also takes a website.",
)
router = record_router(RESOURCE)
