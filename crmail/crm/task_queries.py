"""Who sees and changes which tasks, and the lists the pages and the API read.

A task belongs to its record (``Task.module``, ``Task.record_id``), so it follows the
record's access (``people.access``), and to its owner:

- whoever may view the record sees its tasks; a task's owner always sees it;
- whoever may edit the record adds tasks to it and changes or deletes its tasks; a task's
  owner changes (ticks, edits, deletes) their own;
- a task is given only to an active user who may view its record, so its owner can open
  what it is about.

Every answer here is a query or built from a fixed number of them: the lists of the
record page, the home page and the API never ask per row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from django.db.models import Q, QuerySet

from crmail.crm.models import RECORD_MODELS, Record, Task
from crmail.people import access
from crmail.people.models import User

RecordKey = tuple[str, int]


def record_of(module: str, record_id: int) -> Record | None:
    """The record a task names, or None when there is none (or no such module)."""
    model = RECORD_MODELS.get(module)
    return None if model is None else model.objects.filter(pk=record_id).first()


def visible_tasks(user: User) -> QuerySet[Task]:
    """The tasks ``user`` may see: their own, and those on records they may view."""
    if not user.is_authenticated or not user.is_active:
        return Task.objects.none()
    seen = Q(owner_id=user.pk)
    for module, model in RECORD_MODELS.items():
        scope = access.record_scope(user, model, "view")
        if scope is None:
            continue
        if not scope:
            seen |= Q(module=module)
        else:
            seen |= Q(module=module, record_id__in=model.objects.filter(scope).values("pk"))
    return Task.objects.filter(seen)


def may_add(user: User, record: Record) -> bool:
    """Whether ``user`` may put tasks on ``record``: they may edit it."""
    return access.can(user, record, "edit")


def may_change(user: User, task: Task, record: Record | None = None) -> bool:
    """Whether ``user`` may tick, edit or delete ``task``: its owner, or someone who may
    edit its record (``record``: the task's record, when the caller has it already)."""
    if task.owner_id == user.pk:
        return True
    record = record if record is not None else record_of(task.module, task.record_id)
    return record is not None and access.can(user, record, "edit")


def may_own(user: User, record: Record) -> bool:
    """Whether a task on ``record`` may be given to ``user``: active, and able to view it."""
    return user.is_active and access.can(user, record, "view")


NEXT_FIRST = ("done", "due", "-done_at", "pk")  # open ones by due day, then the latest done


def of_record(record: Record) -> QuerySet[Task]:
    """Every task on ``record``, open ones first by due day: what one who may view the
    record sees (``visible_tasks`` without asking again, for a page that has just read
    the record through ``people.access``)."""
    return (
        Task.objects.filter(module=record.MODULE, record_id=record.pk)
        .select_related("owner")
        .order_by(*NEXT_FIRST)
    )


def open_tasks(user: User) -> QuerySet[Task]:
    """``user``'s own open tasks, the overdue first, then by due day."""
    return Task.objects.filter(owner_id=user.pk, done=False).order_by("due", "pk")


def is_overdue(task: Task, today: date) -> bool:
    return not task.done and task.due < today


def record_names(user: User, keys: Iterable[RecordKey]) -> dict[RecordKey, str]:
    """The names of these records that ``user`` may view (one query per module asked for);
    a record they may not view, or that is gone, is left out."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for module, record_id in keys:
        if module in RECORD_MODELS:
            wanted[module].add(record_id)
    names: dict[RecordKey, str] = {}
    for module, ids in wanted.items():
        model = RECORD_MODELS[module]
        for record in access.visible(user, model).filter(pk__in=ids):
            names[(module, record.pk)] = str(record) or "(no name)"
    return names
