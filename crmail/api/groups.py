"""``/groups``: everyone may list and read groups (they are what mail is shared with);
only administrators add, change and remove them, through ``people.actions`` like the web
pages and ``crmail group``."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.errors import Forbidden
from crmail.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    Id,
    Input,
    ListParams,
    Page,
    QueryText,
)
from crmail.api.users import people_errors
from crmail.people import actions as people_actions
from crmail.people.models import Group, User

router = Router(tags=["Groups"])

ADMINS_ONLY = "Only administrators may add, change or remove groups."


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise Forbidden(ADMINS_ONLY)


class GroupOut(Schema):
    id: int
    name: str
    description: str
    user_ids: list[int] = Field(description="Members named one by one.")
    role_ids: list[int] = Field(description="Roles whose users are members.")
    include_subordinate_roles: bool = Field(description="Users in roles below those count too.")


class GroupPatch(Input):
    name: str | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=300)
    user_ids: list[Id] | None = Field(None, max_length=10_000, description="Replace the members.")
    role_ids: list[Id] | None = Field(None, max_length=1_000, description="Replace the roles.")
    include_subordinate_roles: bool | None = None


class GroupIn(GroupPatch):
    name: str = Field(max_length=100)


class GroupFilters(ListParams):
    q: QueryText | None = Field(None, description="Words in the name.")


def groups() -> QuerySet[Group]:
    return Group.objects.prefetch_related("users", "roles").order_by("name", "pk")


def _out(group: Group) -> dict[str, Any]:
    return {
        "id": group.pk,
        "name": group.name,
        "description": group.description,
        "user_ids": sorted(u.pk for u in group.users.all()),
        "role_ids": sorted(r.pk for r in group.roles.all()),
        "include_subordinate_roles": group.include_subordinate_roles,
    }


def _changes(payload: dict[str, Any]) -> dict[str, Any]:
    """The request's fields as the writer takes them (members and roles by id)."""
    names = {"user_ids": "users", "role_ids": "roles"}
    return {names.get(k, k): v for k, v in payload.items()}


@router.get("", response={200: Page[GroupOut]}, openapi_extra=READ_ERRORS, summary="List groups")
def list_groups(request: HttpRequest, filters: Query[GroupFilters]) -> dict:
    qs = groups()
    for word in records.search_words(filters.q):
        qs = qs.filter(Q(name__icontains=word))
    page = records.page(qs, filters)
    page["items"] = [_out(g) for g in page["items"]]
    return page


@router.get("/{id}", response={200: GroupOut}, openapi_extra=READ_ERRORS, summary="Read a group")
def read_group(request: HttpRequest, id: Id) -> dict[str, Any]:
    return _out(records.get_or_404(groups(), id))


@router.post(
    "", response={201: GroupOut}, openapi_extra=WRITE_ERRORS, summary="Add a group (administrators)"
)
def create_group(request: HttpRequest, payload: GroupIn) -> dict[str, Any]:
    actor = current_user(request)
    require_admin(actor)
    with people_errors():
        group = people_actions.create_group(
            _changes(payload.model_dump(exclude_unset=True)), by=actor
        )
    return _out(records.get_or_404(groups(), group.pk))


@router.patch(
    "/{id}", response={200: GroupOut}, openapi_extra=WRITE_ERRORS, summary="Change a group"
)
def update_group(request: HttpRequest, id: Id, payload: GroupPatch) -> dict[str, Any]:
    """Administrators only. `user_ids` and `role_ids` replace the members; null or absent
    leaves a field as it is."""
    actor = current_user(request)
    require_admin(actor)
    group = records.get_or_404(groups(), id)
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    with people_errors():
        people_actions.update_group(group, _changes(changes), by=actor)
    return _out(records.get_or_404(groups(), id))


@router.delete("/{id}", response={204: None}, openapi_extra=WRITE_ERRORS, summary="Remove a group")
def delete_group(request: HttpRequest, id: Id) -> None:
    """Administrators only. Mail shared with the group is no longer shared through it."""
    actor = current_user(request)
    require_admin(actor)
    group = records.get_or_404(groups(), id)
    with people_errors():
        people_actions.delete_group(group, by=actor)
