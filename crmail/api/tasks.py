"""``/tasks``: tasks on records (SPEC F13), read through ``crm.task_queries`` and written by
``crm.task_actions``.

You see your own tasks and the tasks on records you may view; another task answers 404.
You add tasks to a record you may edit (403 when you may only view it; 422 naming
``record_id`` when you may not see it); a task's owner, and whoever may edit its record,
change, tick and delete it (403 for others who see it). A task goes to an active user who
may view its record (422 naming ``owner_id`` otherwise).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from ninja import Query, Router, Schema
from pydantic import Field, StrictBool, field_validator

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.errors import Invalid
from crmail.api.schemas import (
    READ_ERRORS,
    RECORD_MODULE,
    WRITE_ERRORS,
    Id,
    Input,
    ListParams,
    Page,
    UserRef,
)
from crmail.crm import task_actions
from crmail.crm.models import TASK_NOTES_MAX, TASK_TITLE_MAX, Task
from crmail.crm.task_queries import is_overdue, record_names, visible_tasks
from crmail.people.models import User
from crmail.sharing.visibility import may_see_message, seen_of

router = Router(tags=["Tasks"])

Title = Annotated[str, Field(min_length=1, max_length=TASK_TITLE_MAX)]
Notes = Annotated[str, Field(max_length=TASK_NOTES_MAX)]


class TaskOut(Schema):
    id: int
    title: str
    notes: str
    due: date
    overdue: bool = Field(description="Open, and due before today.")
    done: bool
    done_at: datetime | None
    owner: UserRef
    module: RECORD_MODULE
    record_id: int
    record_name: str | None = Field(
        description="The record's name; null when you may not open the record (your task "
        "on a record taken out of your sight)."
    )
    record_url: str = Field(description="The record's page in crmail.")
    created_by: UserRef | None = Field(description="Null when a workflow made it.")
    message_id: int | None = Field(description="The mail it came from, when you may see it.")
    created_at: datetime
    modified_at: datetime


class TaskFilters(ListParams):
    module: RECORD_MODULE | None = Field(None, description="With record_id: one record's tasks.")
    record_id: Id | None = Field(None, description="With module: one record's tasks.")
    owner: Id | None = Field(
        None, description="This user's tasks; yours when neither this nor a record is given."
    )
    done: bool | None = Field(None, description="Only done (true) or open (false) tasks.")


class TaskIn(Input):
    module: RECORD_MODULE
    record_id: Id = Field(description="A record you may edit.")
    title: Title
    due: date = Field(description="The day it is due, YYYY-MM-DD.")
    owner_id: Id | None = Field(
        None, description="An active user who may view the record; defaults to you."
    )
    notes: Notes = ""
    message_id: Id | None = Field(None, description="The mail it comes from: one you may see.")


class TaskPatch(Input):
    title: Title | None = None
    notes: Notes | None = None
    due: date | None = None
    owner_id: Id | None = None
    done: StrictBool | None = Field(None, description="true: tick it done; false: open again.")

    @field_validator("title", "notes", "due", "owner_id", "done", mode="after")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only on the values given: an absent field keeps its value.
        if value is None:
            raise ValueError("Cannot be null: leave the field out to keep its value.")
        return value


def _user_ref(user: User | None) -> dict[str, Any] | None:
    return None if user is None else {"id": user.pk, "name": user.name, "email": user.email}


def _owner(user: User, owner_id: int | None) -> User:
    if owner_id is None:
        return user
    owner = User.objects.filter(pk=owner_id, is_active=True).first()
    if owner is None:
        raise Invalid.one("owner_id", f"There is no active user {owner_id}.")
    return owner


def _outs(request: HttpRequest, user: User, tasks: list[Task]) -> list[dict[str, Any]]:
    """The tasks as answered, with a fixed number of queries (names, mail) for the page."""
    names = record_names(user, {(t.module, t.record_id) for t in tasks})
    seen = seen_of(user, (t.message_id for t in tasks))
    today = timezone.localdate()
    before, _, after = request.build_absolute_uri(
        reverse("web:record_detail", args=["leads", 0])
    ).rpartition("/leads/0/")
    return [
        {
            "id": t.pk,
            "title": t.title,
            "notes": t.notes,
            "due": t.due,
            "overdue": is_overdue(t, today),
            "done": t.done,
            "done_at": t.done_at,
            "owner": _user_ref(t.owner),
            "module": t.module,
            "record_id": t.record_id,
            "record_name": names.get((t.module, t.record_id)),
            "record_url": f"{before}/{t.module}/{t.record_id}/{after}",
            "created_by": _user_ref(t.created_by),
            "message_id": t.message_id if t.message_id in seen else None,
            "created_at": t.created_at,
            "modified_at": t.modified_at,
        }
        for t in tasks
    ]


def _visible(user: User) -> Any:
    return visible_tasks(user).select_related("owner", "created_by")


@router.get("", response={200: Page[TaskOut]}, openapi_extra=READ_ERRORS, summary="List tasks")
def list_tasks(request: HttpRequest, filters: Query[TaskFilters]) -> dict[str, Any]:
    """Your tasks (of ``owner``, when given), or with ``module`` and ``record_id`` the
    tasks on that record you may see: open ones first, by due day, then the done ones."""
    user = current_user(request)
    if (filters.module is None) != (filters.record_id is None):
        missing = "record_id" if filters.record_id is None else "module"
        raise Invalid.one(missing, "Give module and record_id together.")
    qs = _visible(user)
    if filters.module is not None:
        qs = qs.filter(module=filters.module, record_id=filters.record_id)
    if filters.owner is not None or filters.module is None:
        qs = qs.filter(owner_id=filters.owner if filters.owner is not None else user.pk)
    if filters.done is not None:
        qs = qs.filter(done=filters.done)
    page = records.page(qs.order_by("done", "due", "-done_at", "pk"), filters)
    page["items"] = _outs(request, user, page["items"])
    return page


@router.post("", response={201: TaskOut}, openapi_extra=WRITE_ERRORS, summary="Add a task")
def create_task(request: HttpRequest, payload: TaskIn) -> dict[str, Any]:
    """A task on a record you may edit, for you or ``owner_id``."""
    user = current_user(request)
    if payload.message_id is not None and not may_see_message(user, payload.message_id):
        raise Invalid.one("message_id", f"There is no message {payload.message_id} you may see.")
    task = task_actions.create_task(
        actor=user,
        module=payload.module,
        record_id=payload.record_id,
        title=payload.title,
        due=payload.due,
        owner=_owner(user, payload.owner_id),
        notes=payload.notes,
        message_id=payload.message_id,
    )
    return _outs(request, user, [_visible(user).get(pk=task.pk)])[0]


@router.get("/{id}", response={200: TaskOut}, openapi_extra=READ_ERRORS, summary="Read a task")
def read_task(request: HttpRequest, id: Id) -> dict[str, Any]:
    user = current_user(request)
    return _outs(request, user, [records.get_or_404(_visible(user), id)])[0]


@router.patch("/{id}", response={200: TaskOut}, openapi_extra=WRITE_ERRORS, summary="Change a task")
def update_task(request: HttpRequest, id: Id, payload: TaskPatch) -> dict[str, Any]:
    """Change the fields given, tick it done (``done``) or open it again; the others keep
    their values. Its owner, or someone who may edit its record."""
    user = current_user(request)
    task = records.get_or_404(_visible(user), id)
    given = payload.model_dump(exclude_unset=True)
    done = given.pop("done", None)
    if "owner_id" in given:
        given["owner"] = _owner(user, given.pop("owner_id"))
    with transaction.atomic():
        if given:
            task_actions.update_task(actor=user, task=task, changes=given)
        if done is not None:
            task_actions.set_task_done(actor=user, task=task, done=done)
    found = _visible(user).filter(pk=task.pk).first()
    return _outs(request, user, [found or task])[0]


@router.delete("/{id}", response={204: None}, openapi_extra=WRITE_ERRORS, summary="Delete a task")
def delete_task(request: HttpRequest, id: Id) -> None:
    """Its owner, or someone who may edit its record."""
    user = current_user(request)
    task_actions.delete_task(actor=user, task=records.get_or_404(_visible(user), id))
