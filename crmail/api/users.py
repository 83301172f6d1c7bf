"""``/users``: everyone may list and read users; only administrators add and change them.

Passwords are never part of an answer. Users are added, changed and deactivated through
the shared writers of crmail.people.actions, like the web pages and the command line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.errors import Forbidden, Invalid, api_field_name
from crmail.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    Id,
    Page,
    UserFilters,
    UserIn,
    UserOut,
    UserPatch,
    errors_doc,
)
from crmail.mail.downloads import mbox_download
from crmail.people import actions as people_actions
from crmail.people.models import Profile, Role, User
from crmail.sharing import actions as sharing_actions

router = Router(tags=["Users"])
log = logging.getLogger(__name__)

ADMINS_ONLY = "Only administrators may add or change users."
BACKUP_ADMINS_ONLY = "Only administrators may back up a user's mail."
MBOX_ANSWER = {
    "responses": {
        # 200 as a number, like ninja's own key for response={200: None}, so the two merge
        # into one answer rather than two "200" keys in the document.
        200: {
            "description": "The user's mail as an mboxrd file (RFC 4155), streamed.",
            "content": {"application/mbox": {"schema": {"type": "string", "format": "binary"}}},
        },
        **errors_doc(401, 403, 404, 422)["responses"],
    }
}
RELATED = {"role_id": Role, "profile_id": Profile, "manager_id": User}


def users() -> QuerySet[User]:
    return User.objects.select_related("role", "profile")


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise Forbidden(ADMINS_ONLY)


@router.get("", response={200: Page[UserOut]}, openapi_extra=READ_ERRORS, summary="List users")
def list_users(request: HttpRequest, filters: Query[UserFilters]) -> dict:
    qs = users()
    for word in records.search_words(filters.q):
        qs = qs.filter(Q(name__icontains=word) | Q(email__icontains=word))
    if filters.is_active is not None:
        qs = qs.filter(is_active=filters.is_active)
    return records.page(qs.order_by("name", "email", "pk"), filters)


@router.get("/{id}", response={200: UserOut}, openapi_extra=READ_ERRORS, summary="Read a user")
def read_user(request: HttpRequest, id: Id) -> User:
    return records.get_or_404(users(), id)


@router.post(
    "", response={201: UserOut}, openapi_extra=WRITE_ERRORS, summary="Add a user (administrators)"
)
def create_user(request: HttpRequest, payload: UserIn) -> User:
    require_admin(current_user(request))
    user = add_user(current_user(request), payload)
    return records.get_or_404(users(), user.pk)


@router.patch("/{id}", response={200: UserOut}, openapi_extra=WRITE_ERRORS, summary="Change a user")
def update_user(request: HttpRequest, id: Id, payload: UserPatch) -> User:
    """Administrators only. ``is_active: false`` deactivates the user."""
    actor = current_user(request)
    require_admin(actor)
    target = records.get_or_404(users(), id)
    change_user(actor, target, payload.model_dump(exclude_unset=True))
    return records.get_or_404(users(), id)


@router.post(
    "/{id}/deactivate",
    response={200: UserOut},
    openapi_extra=WRITE_ERRORS,
    summary="Deactivate a user (administrators)",
)
def deactivate_user(request: HttpRequest, id: Id) -> User:
    """The user can no longer sign in or use their API tokens; their records stay."""
    actor = current_user(request)
    require_admin(actor)
    target = records.get_or_404(users(), id)
    change_user(actor, target, {"is_active": False})
    return records.get_or_404(users(), id)


@router.get(
    "/{id}/mail-backup",
    response={200: None},
    openapi_extra=MBOX_ANSWER,
    summary="Download a user's mail as an mbox file (administrators)",
)
def mail_backup(request: HttpRequest, id: Id) -> StreamingHttpResponse:
    """Every message in the user's mailboxes (any folder, active mailbox or not) and every
    message they sent from crmail, each once, oldest first, as ``application/mbox``
    (mboxrd). Once the whole file has been sent the backup is recorded: a deactivated
    user's synced mail, off the records' lists until then, shows again as their setting
    shares it (SPEC F12). Any user's mail may be backed up."""
    actor = current_user(request)
    if not actor.is_admin:
        raise Forbidden(BACKUP_ADMINS_ONLY)
    target = records.get_or_404(User.objects.all(), id)
    log.info("mail backup of user %s downloaded by user %s", target.pk, actor.pk)
    return mbox_download(sharing_actions.take_backup(actor, target), target)


# ---------------------------------------------------------------------------- writes


def related(payload: dict[str, Any]) -> dict[str, Any]:
    """``role_id``/``profile_id``/``manager_id`` as rows; unknown ids are invalid input."""
    found: dict[str, Any] = {}
    errors = []
    for field, model in RELATED.items():
        if field not in payload:
            continue
        pk = payload[field]
        row = None if pk is None else model.objects.filter(pk=pk).first()
        if pk is not None and row is None:
            errors.append({"field": field, "message": f"No {model.__name__.lower()} has id {pk}."})
        found[field.removesuffix("_id")] = row
    if errors:
        raise Invalid(errors)
    return found


def add_user(actor: User, payload: UserIn) -> User:
    """Through the shared writer of users (role and profile default there)."""
    fields = related(payload.model_dump(include={"role_id", "profile_id", "manager_id"}))
    with people_errors():
        return people_actions.create_user(
            payload.email, name=payload.name, password=payload.password, by=actor, **fields
        )


def change_user(actor: User, target: User, changes: dict[str, Any]) -> None:
    fields = related(changes)
    # null leaves a plain field as it is (only related ids may be cleared).
    fields.update(
        {k: v for k, v in changes.items() if k in ("name", "is_active") and v is not None}
    )
    with people_errors():
        people_actions.update_user(target, fields, by=actor)


@contextmanager
def people_errors() -> Iterator[None]:
    """The shared writers' refusals as API errors, fields under their API names."""
    try:
        yield
    except people_actions.NotAllowed as exc:
        raise Forbidden(ADMINS_ONLY) from exc
    except people_actions.Invalid as exc:
        raise Invalid(
            [{"field": api_field_name(e["field"]), "message": e["message"]} for e in exc.errors]
        ) from None
