"""The only writers of tasks: check, write in one transaction, record the event.

The record page, the home page, the API and workflows call these. ``actor`` is the user
acting, checked by the rules of ``crm.task_queries``; None is crmail itself (a workflow,
whose rule was allowed when it was saved), which skips the actor's checks but not the
task's: a task is always on an existing record, with a title and a due day, for an
active user who may view the record. Refusals are ``RecordInvalid`` (naming the fields:
``module``, ``record_id``, ``title``, ``due``, ``owner``, ``notes``) and ``NotAllowed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from crmail.crm.actions import NotAllowed, RecordInvalid
from crmail.crm.models import RECORD_MODELS, TASK_NOTES_MAX, TASK_TITLE_MAX, Record, Task
from crmail.crm.task_queries import may_add, may_change, may_own, record_of
from crmail.events import outbox
from crmail.events.kinds import TaskCreated, TaskDeleted, TaskUpdated
from crmail.people import access
from crmail.people.models import User
from crmail.text import text_problem

EDITABLE = ("title", "notes", "due", "owner")
SINGULAR = {"leads": "lead", "contacts": "contact", "accounts": "account", "deals": "deal"}


def _error(field: str, message: str) -> RecordInvalid:
    return RecordInvalid([{"field": field, "message": message}])


def _record(actor: User | None, module: str, record_id: int) -> Record:
    """The record a new task goes on; one the actor may view (else it does not exist for
    them) and may edit."""
    if module not in RECORD_MODELS:
        raise _error("module", f"Choose one of {', '.join(RECORD_MODELS)}.")
    record = record_of(module, record_id)
    if record is None or (actor is not None and not access.can(actor, record, "view")):
        raise _error("record_id", f"There is no {SINGULAR[module]} {record_id} that you may see.")
    if actor is not None and not may_add(actor, record):
        raise NotAllowed(f"You may see this {SINGULAR[module]} but not add tasks to it.")
    return record


def _checked(values: dict[str, Any], record: Record) -> dict[str, Any]:
    """``values`` cleaned (the title trimmed), or ``RecordInvalid`` naming each problem."""
    errors: list[dict[str, str]] = []
    title = values["title"]
    if not isinstance(title, str) or not title.strip():
        errors.append({"field": "title", "message": "Say what is to be done."})
    else:
        title = title.strip()
        if len(title) > TASK_TITLE_MAX:
            errors.append({"field": "title", "message": f"At most {TASK_TITLE_MAX} characters."})
        elif "\n" in title or "\r" in title:
            errors.append({"field": "title", "message": "A title is one line."})
        elif problem := text_problem(title):
            errors.append({"field": "title", "message": problem})
    notes = values["notes"] if values["notes"] is not None else ""
    if not isinstance(notes, str):
        errors.append({"field": "notes", "message": "Notes are text."})
    elif len(notes) > TASK_NOTES_MAX:
        errors.append({"field": "notes", "message": f"At most {TASK_NOTES_MAX:,} characters."})
    elif problem := text_problem(notes):
        errors.append({"field": "notes", "message": problem})
    due = values["due"]
    if not isinstance(due, date) or isinstance(due, datetime):
        errors.append({"field": "due", "message": "Give the day it is due."})
    owner = values["owner"]
    if not isinstance(owner, User):
        errors.append({"field": "owner", "message": "Choose who is to do it."})
    elif not may_own(owner, record):
        who = owner.name or owner.email
        errors.append(
            {
                "field": "owner",
                "message": f"{who} cannot open this {SINGULAR[record.MODULE]}"
                + ("" if owner.is_active else " (deactivated)")
                + ": choose someone who can.",
            }
        )
    if errors:
        raise RecordInvalid(errors)
    return {**values, "title": title, "notes": notes.replace("\r\n", "\n")}


def create_task(
    *,
    actor: User | None,
    module: str,
    record_id: int,
    title: str,
    due: date,
    owner: User,
    notes: str = "",
    message_id: int | None = None,
) -> Task:
    """Put a task on the record (``module``, ``record_id``) for ``owner``, due on ``due``;
    ``message_id``: the mail it came from."""
    record = _record(actor, module, record_id)
    values = _checked({"title": title, "notes": notes, "due": due, "owner": owner}, record)
    if message_id is not None and (isinstance(message_id, bool) or message_id < 1):
        raise _error("message_id", "A message id is a positive number.")
    with transaction.atomic():
        task = Task.objects.create(
            module=module,
            record_id=record.pk,
            created_by=actor,
            message_id=message_id,
            **values,
        )
        outbox.record(
            TaskCreated(
                task_id=task.pk,
                module=module,
                record_id=record.pk,
                owner_id=owner.pk,
                due=task.due.isoformat(),
                actor_id=actor.pk if actor else None,
                message_id=message_id,
            )
        )
    return task


def _check_change(actor: User | None, task: Task) -> Record:
    """The task's record, when ``actor`` may change the task (``NotAllowed`` otherwise)."""
    record = record_of(task.module, task.record_id)
    if record is None:
        raise NotAllowed("This task's record is gone.")
    if actor is not None and not may_change(actor, task, record):
        raise NotAllowed(
            "Only the task's owner and those who may edit its "
            f"{SINGULAR[task.module]} may change it."
        )
    return record


def update_task(*, actor: User | None, task: Task, changes: Mapping[str, Any]) -> Task:
    """Change the fields named in ``changes`` (title, notes, due, owner); the rest stay."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise RecordInvalid(
            [{"field": k, "message": "Not a field of a task."} for k in sorted(unknown)]
        )
    record = _check_change(actor, task)
    before = {k: getattr(task, k if k != "owner" else "owner_id") for k in EDITABLE}
    values = {k: getattr(task, k) for k in EDITABLE} | dict(changes)
    values = _checked(values, record)
    after = {k: (values[k].pk if k == "owner" else values[k]) for k in EDITABLE}
    changed = [k for k in EDITABLE if before[k] != after[k]]
    if not changed:
        return task
    with transaction.atomic():
        for key in changed:
            setattr(task, key, values[key])
        task.save(update_fields=[*changed, "modified_at"])
        outbox.record(_updated(actor, task, changed))
    return task


def set_task_done(*, actor: User | None, task: Task, done: bool) -> Task:
    """Tick the task done (``done``) or open it again."""
    _check_change(actor, task)
    if task.done == bool(done):
        return task
    with transaction.atomic():
        task.done = bool(done)
        task.done_at = timezone.now() if done else None
        task.save(update_fields=["done", "done_at", "modified_at"])
        outbox.record(_updated(actor, task, ["done"]))
    return task


def delete_task(*, actor: User | None, task: Task) -> None:
    _check_change(actor, task)
    task_id = task.pk
    with transaction.atomic():
        task.delete()
        outbox.record(
            TaskDeleted(
                task_id=task_id,
                module=task.module,
                record_id=task.record_id,
                actor_id=actor.pk if actor else None,
            )
        )


def _updated(actor: User | None, task: Task, fields: list[str]) -> TaskUpdated:
    return TaskUpdated(
        task_id=task.pk,
        module=task.module,
        record_id=task.record_id,
        actor_id=actor.pk if actor else None,
        fields=fields,
        done=task.done,
    )
