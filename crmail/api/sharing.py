"""``/sharing``: who sees each user's synced mail (SPEC F5).

Everyone reads and changes their own setting (``/sharing/me``) unless an administrator
locked it; administrators read and change everyone's, and lock them. In custom mode the
records shared are listed and changed under ``/sharing/me/records`` (and
``/sharing/{user_id}/records``). Every change goes
through ``crmail.sharing.actions`` like the web pages and ``crmail sharing``; this module
only shapes the input and the answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.urls import reverse
from ninja import Query, Router, Schema
from pydantic import Field

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.errors import Forbidden, Invalid
from crmail.api.schemas import (
    MAX_LIMIT,
    WRITE_ERRORS,
    Id,
    Input,
    ListParams,
    Page,
    UserFilters,
    UserRef,
    errors_doc,
)
from crmail.people import access
from crmail.people import actions as people_actions
from crmail.people.models import Group, User
from crmail.sharing import actions, queries
from crmail.sharing.models import Mode, ShareTarget, SharingSetting
from crmail.sharing.shared_records import SharedRow, shared_records
from crmail.sharing.visibility import record_model

router = Router(tags=["Mail sharing"])

ADMINS_ONLY = "Only administrators see and change other users' mail sharing."
MAX_DOMAINS = 200
MAX_TARGETS = 1000

ModeName = Literal["private", "public", "custom"]
ModuleName = Literal["leads", "contacts", "accounts", "deals"]
AudienceName = Literal["everyone", "chosen"]
Domain = Annotated[str, Field(max_length=253)]

# ---------------------------------------------------------------------------- schemas


class GroupRef(Schema):
    id: int
    name: str


class OwnerOut(UserRef):
    is_active: bool = Field(description="A deactivated user's synced mail is shared with nobody.")


class SharingOut(Schema):
    user: OwnerOut = Field(description="Whose synced mail this setting is about.")
    mode: ModeName = Field(
        description="private: the owner only, whatever the hierarchy; public: everyone who "
        "can access the record (or the chosen audience); custom: per record. A user without "
        "a setting is private."
    )
    audience: AudienceName = Field(
        description="Public mode: ``everyone`` who can access the record, or only the "
        "``chosen`` users and groups (and the owner's managers)."
    )
    shared_with: str = Field(description="Who public mail is shared with, in words.")
    share_with_users: list[UserRef] = Field(
        description="The chosen users (used when the audience is ``chosen``)."
    )
    share_with_groups: list[GroupRef] = Field(
        description="The chosen groups (used when the audience is ``chosen``)."
    )
    excluded_domains: list[str] = Field(
        description="Public mode: mail whose other participants are all at these domains "
        "(or their subdomains) stays private."
    )
    excluded_domain_count: int
    shared_records: int = Field(description="Custom mode: how many records the owner shares.")
    locked: bool = Field(description="Locked by an administrator: the owner cannot change it.")
    updated_at: datetime | None = Field(description="When the setting last changed.")


class SharingDetailOut(SharingOut):
    suggested_excluded_domains: list[str] = Field(
        description="The owner's own domains (their address's and their mailboxes'), public "
        "mail providers left out: the domains recommended for ``excluded_domains``."
    )


class SharingPatch(Input):
    mode: ModeName | None = Field(None, description="private, public or custom.")
    audience: AudienceName | None = Field(
        None,
        description="everyone or chosen. Without it, giving chosen users or groups makes the "
        "audience ``chosen`` (``everyone`` when both lists end up empty).",
    )
    share_with_user_ids: list[Id] | None = Field(
        None,
        max_length=MAX_TARGETS,
        description="Replaces the chosen users (active users other than the owner).",
    )
    share_with_group_ids: list[Id] | None = Field(
        None, max_length=MAX_TARGETS, description="Replaces the chosen groups."
    )
    excluded_domains: list[Domain] | None = Field(
        None,
        max_length=MAX_DOMAINS,
        description="Replaces the excluded domains (``example.com``; lower-cased, ``@`` "
        "and a final dot removed).",
    )


class LockIn(Input):
    locked: bool = Field(description="true: only administrators change the setting.")


# ------------------------------------------------------------------------------ reads


def describe(users: list[User]) -> list[dict[str, Any]]:
    """The answers for ``users``, in a fixed number of queries."""
    settings = {s.pk: s for s in SharingSetting.objects.filter(user__in=users)}
    targets: dict[int, list[ShareTarget]] = {}
    for target in ShareTarget.objects.filter(setting__user__in=users).select_related(
        "user", "group"
    ):
        targets.setdefault(target.setting_id, []).append(target)
    out = []
    for user, row in zip(users, queries.summaries(users), strict=True):
        chosen = targets.get(user.pk, [])
        setting = settings.get(user.pk)
        out.append(
            {
                "user": user,
                "mode": row.mode,
                "audience": row.audience,
                "shared_with": row.shared_with,
                "share_with_users": sorted(
                    (t.user for t in chosen if t.user_id),
                    key=lambda u: u.email,  # type: ignore[union-attr]
                ),
                "share_with_groups": sorted(
                    (t.group for t in chosen if t.group_id),
                    key=lambda g: g.name,  # type: ignore[union-attr]
                ),
                "excluded_domains": row.excluded,
                "excluded_domain_count": len(row.excluded),
                "shared_records": row.shared_records,
                "locked": row.locked,
                "updated_at": setting.updated_at if setting else None,
            }
        )
    return out


def detail(user: User) -> dict[str, Any]:
    return {
        **describe([user])[0],
        "suggested_excluded_domains": actions.suggested_excluded_domains(user),
    }


def owner_for(request: HttpRequest, user_id: int) -> User:
    """The user whose setting is asked for: 404 when unknown, 403 unless it is the caller
    or the caller is an administrator."""
    actor = current_user(request)
    owner = records.get_or_404(User.objects.all(), user_id)
    if owner.pk != actor.pk and not actor.is_admin:
        raise Forbidden(ADMINS_ONLY)
    return owner


@router.get(
    "",
    response={200: Page[SharingOut]},
    openapi_extra=errors_doc(401, 403, 422),
    summary="List every user's mail sharing (administrators)",
)
def list_sharing(request: HttpRequest, filters: Query[UserFilters]) -> dict[str, Any]:
    """Active users first, then by name; ``excluded_domain_count`` gives the counts the
    administrators' overview shows."""
    if not current_user(request).is_admin:
        raise Forbidden(ADMINS_ONLY)
    qs: QuerySet[User] = User.objects.all()
    for word in records.search_words(filters.q):
        qs = qs.filter(Q(name__icontains=word) | Q(email__icontains=word))
    if filters.is_active is not None:
        qs = qs.filter(is_active=filters.is_active)
    result = records.page(qs.order_by("-is_active", "name", "email", "pk"), filters)
    result["items"] = describe(result["items"])
    return result


class DefaultOut(Schema):
    mode: ModeName = Field(
        description="The mode a new user starts with and the mailbox connect form preselects."
    )
    meaning: str = Field(description="What the mode means, in words.")


class DefaultIn(Input):
    mode: ModeName = Field(description="private, public or custom.")


def default_out() -> dict[str, Any]:
    mode = Mode(actions.organisation_default())
    return {"mode": mode.value, "meaning": actions.MODE_MEANINGS[mode]}


@router.get(
    "/default",
    response={200: DefaultOut},
    openapi_extra=errors_doc(401),
    summary="Read the organisation's default mail sharing",
)
def read_default(request: HttpRequest) -> dict[str, Any]:
    current_user(request)
    return default_out()


@router.put(
    "/default",
    response={200: DefaultOut},
    openapi_extra=WRITE_ERRORS,
    summary="Set the organisation's default mail sharing (administrators)",
)
def update_default(request: HttpRequest, payload: DefaultIn) -> dict[str, Any]:
    """New users start with it; existing users' settings stay as they are."""
    with sharing_errors():
        actions.set_organisation_default(current_user(request), payload.mode)
    return default_out()


@router.get(
    "/me",
    response={200: SharingDetailOut},
    openapi_extra=errors_doc(401),
    summary="Read your mail sharing",
)
def read_my_sharing(request: HttpRequest) -> dict[str, Any]:
    return detail(current_user(request))


@router.get(
    "/{user_id}",
    response={200: SharingDetailOut},
    openapi_extra=errors_doc(401, 403, 404, 422),
    summary="Read a user's mail sharing (administrators, or the user)",
)
def read_sharing(request: HttpRequest, user_id: Id) -> dict[str, Any]:
    return detail(owner_for(request, user_id))


# ----------------------------------------------------------------------------- writes


# The writer names the chosen people ``share_with``; the API has users and groups apart.
API_NAMES = {"share_with": "share_with_user_ids"}


@contextmanager
def sharing_errors() -> Iterator[None]:
    """The writer's refusals as API answers: 422 naming fields, 403 in words."""
    try:
        yield
    except people_actions.Invalid as exc:
        raise Invalid(
            [
                {"field": API_NAMES.get(e["field"], e["field"]), "message": e["message"]}
                for e in exc.errors
            ]
        ) from None
    except people_actions.NotAllowed as exc:
        raise Forbidden(str(exc)) from None


def change(actor: User, owner: User, payload: SharingPatch) -> None:
    """Apply the fields given (the others stay as they are) through ``set_sharing``."""
    given = payload.model_dump(exclude_unset=True)
    share_with: list[User | Group] | None = None
    if "share_with_user_ids" in given or "share_with_group_ids" in given:
        current = ShareTarget.objects.filter(setting__user=owner)
        user_ids = given.get("share_with_user_ids")
        if user_ids is None:
            # Deactivated users cannot be chosen again: they drop out.
            active = current.filter(user__is_active=True)
            user_ids = list(active.values_list("user_id", flat=True))
        group_ids = given.get("share_with_group_ids")
        if group_ids is None:
            group_ids = list(current.exclude(group=None).values_list("group_id", flat=True))
        share_with = [*found(User, user_ids, "share_with_user_ids", "user")]
        share_with += found(Group, group_ids, "share_with_group_ids", "group")
    with sharing_errors():
        actions.set_sharing(
            actor,
            owner,
            mode=given.get("mode"),
            audience=given.get("audience"),
            share_with=share_with,
            excluded_domains=given.get("excluded_domains"),
        )


def found(model: type[User] | type[Group], ids: list[int], field: str, noun: str) -> list[Any]:
    """The rows with ``ids``, in order; 422 naming ``field`` for those that do not exist."""
    rows = model.objects.in_bulk(ids)
    missing = [pk for pk in dict.fromkeys(ids) if pk not in rows]
    if missing:
        raise Invalid([{"field": field, "message": f"No {noun} has id {pk}."} for pk in missing])
    return [rows[pk] for pk in dict.fromkeys(ids)]


@router.patch(
    "/me",
    response={200: SharingDetailOut},
    openapi_extra=errors_doc(400, 401, 403, 422),
    summary="Change your mail sharing",
)
def update_my_sharing(request: HttpRequest, payload: SharingPatch) -> dict[str, Any]:
    """Change the fields given. A setting an administrator locked answers 403."""
    actor = current_user(request)
    change(actor, actor, payload)
    return detail(actor)


@router.patch(
    "/{user_id}",
    response={200: SharingDetailOut},
    openapi_extra=WRITE_ERRORS,
    summary="Change a user's mail sharing (administrators, or the user)",
)
def update_sharing(request: HttpRequest, user_id: Id, payload: SharingPatch) -> dict[str, Any]:
    """Change the fields given. Administrators change any setting, locked or not; a user
    changes their own unless it is locked (403)."""
    owner = owner_for(request, user_id)
    change(current_user(request), owner, payload)
    return detail(owner)


@router.post(
    "/{user_id}/lock",
    response={200: SharingDetailOut},
    openapi_extra=WRITE_ERRORS,
    summary="Lock or unlock a user's mail sharing (administrators)",
)
def lock_sharing(request: HttpRequest, user_id: Id, payload: LockIn) -> dict[str, Any]:
    """A locked setting can be changed by administrators only (for example before the user
    leaves, so that their mail does not turn private on the way out)."""
    owner = records.get_or_404(User.objects.all(), user_id)
    with sharing_errors():
        actions.set_locked(current_user(request), owner, payload.locked)
    return detail(owner)


# ------------------------------------------------------------------ custom: per record


class SharedRecordOut(Schema):
    module: ModuleName
    record_id: int
    name: str = Field(description="The record's name (``(no name)`` when it has none).")
    url: str = Field(description="The record's page in crmail.")
    shared_at: datetime = Field(description="When the record was shared.")


class SharedRecordPage(Page[SharedRecordOut]):
    mode: ModeName = Field(
        description="The owner's mode: the shared records apply only while it is ``custom`` "
        "(they are kept in the other modes)."
    )
    hidden: int = Field(
        description="Shared records you may not see (not listed, not counted in ``count``)."
    )


class SharedRecordChange(Schema):
    module: ModuleName
    record_id: int
    shared: bool
    changed: bool = Field(description="false when the record was already in that state.")
    in_effect: bool = Field(description="Whether the owner's mode is ``custom`` now.")


def shared_page(owner: User, reader: User, params: ListParams) -> dict[str, Any]:
    """The records ``owner`` shares that ``reader`` may see, one page of them."""
    found = shared_records(owner, reader)
    limit = min(params.limit, MAX_LIMIT)
    return {
        "items": [shared_out(row) for row in found.rows[params.offset : params.offset + limit]],
        "count": len(found.rows),
        "limit": limit,
        "offset": params.offset,
        "mode": queries.summary(owner).mode,
        "hidden": found.hidden,
    }


def shared_out(row: SharedRow) -> dict[str, Any]:
    return {
        "module": row.module,
        "record_id": row.record_id,
        "name": row.name,
        "url": reverse("web:record_detail", args=[row.module, row.record_id]),
        "shared_at": row.shared_at,
    }


def change_record(
    request: HttpRequest, owner: User, module: str, record_id: int, shared: bool
) -> dict[str, Any]:
    """Share ``owner``'s synced mail on a record, or stop: 404 for a record the caller may
    not see, 422 (``record_id``) for one the owner may not see, 403 when locked."""
    actor = current_user(request)
    if not access.visible(actor, record_model(module)).filter(pk=record_id).exists():
        raise Http404
    with sharing_errors():
        changed = actions.share_record(actor, owner, module, record_id, shared=shared)
    return {
        "module": module,
        "record_id": record_id,
        "shared": shared,
        "changed": changed,
        "in_effect": queries.summary(owner).mode == Mode.CUSTOM,
    }


SHARED_DOC = (
    "In custom mode a user shares all their synced mail on a record, record by record: "
    "everyone who can see the record then sees it. The choices are kept in the other modes."
)


@router.get(
    "/me/records",
    response={200: SharedRecordPage},
    openapi_extra=errors_doc(401, 422),
    summary="List the records you share your synced mail on",
)
def list_my_shared_records(request: HttpRequest, params: Query[ListParams]) -> dict[str, Any]:
    """By module (leads, contacts, accounts, deals), then name. Records you can no longer
    see are counted in ``hidden``."""
    user = current_user(request)
    return shared_page(user, user, params)


@router.put(
    "/me/records/{module}/{record_id}",
    response={200: SharedRecordChange},
    openapi_extra=WRITE_ERRORS,
    summary="Share your synced mail on a record",
)
def share_my_record(request: HttpRequest, module: ModuleName, record_id: Id) -> dict[str, Any]:
    """Answers 404 for a record you may not see, 403 when an administrator locked your
    setting. Sharing twice changes nothing (``changed`` false)."""
    user = current_user(request)
    return change_record(request, user, module, record_id, shared=True)


@router.delete(
    "/me/records/{module}/{record_id}",
    response={204: None},
    openapi_extra=WRITE_ERRORS,
    summary="Stop sharing your synced mail on a record",
)
def unshare_my_record(request: HttpRequest, module: ModuleName, record_id: Id) -> None:
    """Answers 204 whether or not the record was shared; 404 for a record you may not see,
    403 when an administrator locked your setting."""
    user = current_user(request)
    change_record(request, user, module, record_id, shared=False)


@router.get(
    "/{user_id}/records",
    response={200: SharedRecordPage},
    openapi_extra=errors_doc(401, 403, 404, 422),
    summary="List the records a user shares their synced mail on (administrators, or the user)",
)
def list_shared_records(
    request: HttpRequest, user_id: Id, params: Query[ListParams]
) -> dict[str, Any]:
    """Only the records you may see are listed; the others are counted in ``hidden``."""
    return shared_page(owner_for(request, user_id), current_user(request), params)


@router.put(
    "/{user_id}/records/{module}/{record_id}",
    response={200: SharedRecordChange},
    openapi_extra=WRITE_ERRORS,
    summary="Share a user's synced mail on a record (administrators, or the user)",
)
def share_user_record(
    request: HttpRequest, user_id: Id, module: ModuleName, record_id: Id
) -> dict[str, Any]:
    """The user must be able to see the record (422 on ``record_id`` otherwise)."""
    owner = owner_for(request, user_id)
    return change_record(request, owner, module, record_id, shared=True)


@router.delete(
    "/{user_id}/records/{module}/{record_id}",
    response={204: None},
    openapi_extra=WRITE_ERRORS,
    summary="Stop sharing a user's synced mail on a record (administrators, or the user)",
)
def unshare_user_record(
    request: HttpRequest, user_id: Id, module: ModuleName, record_id: Id
) -> None:
    owner = owner_for(request, user_id)
    change_record(request, owner, module, record_id, shared=False)
