"""``/accounts``: companies and organisations."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    AccountFilters,
    AccountIn,
    AccountOut,
    AccountPatch,
    Id,
    Page,
)
from crmail.crm.addresses import normalize_domain
from crmail.crm.models import Account
from crmail.people import access
from crmail.people.models import User

router = Router(tags=["Accounts"])

ORDERING = {
    "name": ("name",),
    "domain": ("domain",),
    "created_at": ("created_at",),
    "modified_at": ("modified_at",),
}


def loaded(qs: QuerySet[Account]) -> QuerySet[Account]:
    return qs.select_related("owner")


def visible(user: User) -> QuerySet[Account]:
    return loaded(access.visible(user, Account))


@router.get(
    "", response={200: Page[AccountOut]}, openapi_extra=READ_ERRORS, summary="List accounts"
)
def list_accounts(request: HttpRequest, filters: Query[AccountFilters]) -> dict:
    """The accounts you may see, a page at a time; ``domain`` also takes a website."""
    qs = records.filter_records(visible(current_user(request)), filters, ("name",))
    if filters.domain is not None:
        qs = qs.filter(domain=normalize_domain(filters.domain))
    return records.page(records.order(qs, filters.ordering, ORDERING), filters)


@router.post(
    "", response={201: AccountOut}, openapi_extra=WRITE_ERRORS, summary="Create an account"
)
def create_account(request: HttpRequest, payload: AccountIn) -> Account:
    account = records.create(current_user(request), "accounts", payload.model_dump())
    return records.reload(loaded(Account.objects.all()), account)


@router.get(
    "/{id}", response={200: AccountOut}, openapi_extra=READ_ERRORS, summary="Read an account"
)
def read_account(request: HttpRequest, id: Id) -> Account:
    return records.get_or_404(visible(current_user(request)), id)


@router.patch(
    "/{id}", response={200: AccountOut}, openapi_extra=WRITE_ERRORS, summary="Change an account"
)
def update_account(request: HttpRequest, id: Id, payload: AccountPatch) -> Account:
    """Change the fields given; the others keep their values."""
    user = current_user(request)
    account = records.get_or_404(visible(user), id)
    records.update(user, account, payload.model_dump(exclude_unset=True))
    return records.reload(loaded(Account.objects.all()), account)


@router.delete(
    "/{id}", response={204: None}, openapi_extra=WRITE_ERRORS, summary="Delete an account"
)
def delete_account(request: HttpRequest, id: Id) -> None:
    user = current_user(request)
    records.delete(user, records.get_or_404(visible(user), id))
    return None
