"""The record access layer: who may see and change which CRM records.

Every reader of records (web views, the API, the importer, and later mail visibility,
search and reports) asks here. The answer is always a query, so it composes with
filters, ordering and pagination in the database and never loads rows to filter them.

A user may act on a record when the user's profile allows the action on the module and
one of these holds:
- the user is an administrator;
- the user owns the record;
- the record's owner is in a role below the user's role in the hierarchy
  (or in the same role, when that role shares with peers);
- the organisation-wide default for the module opens it: public read-only lets
  everyone view, public read/write lets everyone view and edit.
Deleting follows ownership and hierarchy only, never the organisation-wide default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse

from crmail.people.models import AccessLevel, ModuleDefault, User

if TYPE_CHECKING:
    from crmail.crm.models import Record

Action = Literal["view", "create", "edit", "delete"]
R = TypeVar("R", bound="Record")

OPENED_BY_DEFAULT: dict[str, set[str]] = {
    "view": {AccessLevel.PUBLIC_READ, AccessLevel.PUBLIC_READ_WRITE},
    "edit": {AccessLevel.PUBLIC_READ_WRITE},
    "delete": set(),
}


# Within a request the organisation-wide defaults are read once (``remembering``), not at
# every check: one page asks about several modules several times (the inbox, seven).
@dataclass
class _Levels:
    read: dict[str, str] | None = None


_remembered: ContextVar[_Levels | None] = ContextVar("crmail_module_levels", default=None)


def module_level(module: str) -> str:
    """The organisation-wide default for ``module`` (private when never set)."""
    memo = _remembered.get()
    if memo is None:
        level = ModuleDefault.objects.filter(module=module).values_list("level", flat=True).first()
        return level or AccessLevel.PRIVATE
    if memo.read is None:
        memo.read = dict(ModuleDefault.objects.values_list("module", "level"))
    return memo.read.get(module) or AccessLevel.PRIVATE


@contextmanager
def remembering() -> Iterator[None]:
    """Read the organisation-wide defaults once within the block (one request)."""
    token = _remembered.set(_Levels())
    try:
        yield
    finally:
        _remembered.reset(token)


def forget_remembered() -> None:
    """The defaults changed: the block reads them again (their writer calls this)."""
    memo = _remembered.get()
    if memo is not None:
        memo.read = None


class RememberPerRequest:
    """Middleware: each request reads the organisation-wide defaults once."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with remembering():
            return self.get_response(request)


def owners_in_reach(user: User, field: str = "owner") -> Q:
    """Records whose ``field`` user is ``user`` or a user below ``user`` in the hierarchy."""
    return _in_reach(user, f"{field}__")


def _in_reach(user: User, prefix: str) -> Q:
    """The condition of ``owners_in_reach`` on the user at ``prefix`` ("" for the User
    rows themselves, "owner__" for a record's owner)."""
    q = Q(**{f"{prefix}id": user.pk})
    role = user.role
    if role is not None:
        below = Q(**{f"{prefix}role__path__startswith": role.path}) & ~Q(
            **{f"{prefix}role_id": role.pk}
        )
        q |= below
        if role.share_with_peers:
            q |= Q(**{f"{prefix}role_id": role.pk})
    return q


@dataclass(frozen=True)
class Reach:
    """``record_scope`` as values, for queries written as SQL: every row of the module
    (``every``), or the rows owned by one of ``owners`` (the user and those below them)."""

    every: bool
    owners: tuple[int, ...] = ()


def record_reaches(
    user: User, models_: Iterable[type[models.Model]], action: Action = "view"
) -> dict[type[models.Model], Reach | None]:
    """For each of ``models_``, the rows ``user`` may ``action``, as ``record_scope``
    says (None: none at all), read now: the organisation-wide defaults once and the
    owners in reach (the same for every module) once, two queries at most."""
    memo = nullcontext() if _remembered.get() is not None else remembering()
    with memo:
        scopes = {model: record_scope(user, model, action) for model in models_}
    owners: tuple[int, ...] | None = None
    reaches: dict[type[models.Model], Reach | None] = {}
    for model, scope in scopes.items():
        if scope is None or not scope:
            reaches[model] = None if scope is None else Reach(every=True)
            continue
        if owners is None:
            in_reach = User.objects.filter(_in_reach(user, "")).order_by("pk")
            owners = tuple(in_reach.values_list("pk", flat=True))
        reaches[model] = Reach(every=False, owners=owners)
    return reaches


def record_scope(user: User, model: type[models.Model], action: Action = "view") -> Q | None:
    """The condition on ``model`` rows that ``user`` may act on; None means none at all.

    An empty ``Q()`` means every row. Later layers (mail visibility) combine it with their
    own conditions through a relation, so it is exposed apart from ``visible``.
    """
    module = model.MODULE  # type: ignore[attr-defined]
    if not user.is_authenticated or not user.may(module, action):
        return None
    if user.is_admin:
        return Q()
    if action == "create":
        return Q()
    if module_level(module) in OPENED_BY_DEFAULT[action]:
        return Q()
    return owners_in_reach(user)


def visible(user: User, model: type[R], action: Action = "view") -> QuerySet[R]:
    """The ``model`` rows ``user`` may ``action`` (view, edit or delete), as a query."""
    scope = record_scope(user, model, action)
    qs = model._default_manager.all()
    if scope is None:
        return qs.none()
    return qs.filter(scope) if scope else qs


def can(user: User, record: Record, action: Action = "view") -> bool:
    """Whether ``user`` may ``action`` this one ``record``."""
    if action == "create":
        return record_scope(user, type(record), "create") is not None
    scope = record_scope(user, type(record), action)
    if scope is None:
        return False
    if not scope:
        return True
    return type(record)._default_manager.filter(scope, pk=record.pk).exists()


def can_create(user: User, model: type[models.Model]) -> bool:
    """Whether ``user``'s profile lets them create ``model`` records."""
    return record_scope(user, model, "create") is not None
