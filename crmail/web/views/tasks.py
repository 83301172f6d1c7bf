"""Tasks on the pages: the Tasks card of a record, "My open tasks" on the home page, and a
task's edit page. Read through ``crm.task_queries``, written by ``crm.task_actions``.

A task the user may not see answers 404, one they see but may not change 403. Adding and
ticking answer htmx with the card they came from (``#tasks`` on a record, ``#my-tasks``
on the home page), swapped in place; without script they go back to that page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from crmail.crm import task_actions
from crmail.crm.actions import NotAllowed, RecordInvalid
from crmail.crm.models import Record, Task
from crmail.crm.task_queries import (
    is_overdue,
    may_add,
    may_change,
    of_record,
    record_of,
    visible_tasks,
)
from crmail.people import access
from crmail.people.models import User
from crmail.sharing import today
from crmail.sharing.visibility import seen_of
from crmail.web.modules import MODULES
from crmail.web.task_forms import TaskForm

RECORD_CARD = "tasks"
HOME_CARD = "my-tasks"
DONE_SHOWN = 10
HOME_SHOWN = 10


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _target(request: HttpRequest) -> str:
    """The card an htmx request came from ("" without htmx)."""
    if request.headers.get("HX-Request") != "true":
        return ""
    return request.headers.get("HX-Target", "")


def tasks_context(
    user: User,
    module: str,
    record: Record,
    form: TaskForm | None = None,
    can_edit: bool | None = None,
) -> dict[str, Any]:
    """The record page's Tasks card: open tasks by due day, the latest done ones, and the
    form to add one when the user may edit the record (``can_edit``, when the page knows
    it already). ``record`` is one the user may view: read through ``people.access``."""
    found = list(of_record(record))
    can_edit = may_add(user, record) if can_edit is None else can_edit
    day = timezone.localdate()
    seen = seen_of(user, (t.message_id for t in found))
    rows = [
        {
            "task": t,
            "overdue": is_overdue(t, day),
            "can_change": can_edit or t.owner_id == user.pk,
            "message_id": t.message_id if t.message_id in seen else None,
        }
        for t in found
    ]
    done = [r for r in rows if r["task"].done]
    return {
        "tasks": {
            "open": [r for r in rows if not r["task"].done],
            "done": done[:DONE_SHOWN],
            "done_count": len(done),
            "can_add": can_edit,
            "form": form or TaskForm(initial={"owner": user.pk, "due": day}, auto_id="task_%s"),
            "add_url": reverse("web:task_add", args=[module, record.pk]),
            "singular": MODULES[module].singular,
        }
    }


def home_context(user: User) -> dict[str, Any]:
    """The home page's "My open tasks" (``sharing.today``)."""
    return {"my_tasks": today.my_open_tasks(user, limit=HOME_SHOWN)}


def _record_page(module: str, pk: int) -> str:
    return reverse("web:record_detail", args=[module, pk]) + "#tasks"


def _after(user: User, module: str, record_id: int) -> HttpResponse:
    """Back to the task's record once it is changed, or home when the user cannot open it."""
    record = record_of(module, record_id)
    if record is not None and access.can(user, record, "view"):
        return redirect(_record_page(module, record_id))
    return redirect("web:home")


def _card(request: HttpRequest, task_module: str, record: Record) -> HttpResponse:
    context = {"module": task_module, "record": record}
    context |= tasks_context(_user(request), task_module, record)
    return render(request, "web/records/_tasks.html", context)


def _home_card(request: HttpRequest) -> HttpResponse:
    return render(request, "web/_my_tasks.html", home_context(_user(request)))


@login_required
@require_POST
def task_add(request: HttpRequest, module: str, pk: int) -> HttpResponse:
    """Add a task to a record (the Tasks card's form)."""
    user = _user(request)
    record = get_object_or_404(access.visible(user, MODULES[module].model), pk=pk)
    form = TaskForm(request.POST, auto_id="task_%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            task = task_actions.create_task(
                actor=user,
                module=module,
                record_id=record.pk,
                title=data["title"],
                due=data["due"],
                owner=data["owner"],
                notes=data["notes"],
            )
        except NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
        except RecordInvalid as exc:
            form.add_refusal(exc)
        else:
            if _target(request) == RECORD_CARD:
                return _card(request, module, record)
            messages.success(request, f"Task “{task.title}” added.")
            return redirect(_record_page(module, record.pk))
    if _target(request) == RECORD_CARD:
        context = {"module": module, "record": record}
        return render(
            request, "web/records/_tasks.html", context | tasks_context(user, module, record, form)
        )
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else "Task"
        for error in errors:
            messages.error(request, f"{label}: {error}")
    return redirect(_record_page(module, record.pk))


def _visible_task(request: HttpRequest, pk: int) -> Task:
    return get_object_or_404(visible_tasks(_user(request)).select_related("owner"), pk=pk)


def _back(request: HttpRequest, task: Task) -> HttpResponse:
    """Where a change without script returns: the page it was made on, else the record."""
    back = request.POST.get("back", "")
    if back.startswith("/") and not back.startswith("//") and "\n" not in back and "\r" not in back:
        return redirect(back)
    return _after(_user(request), task.module, task.record_id)


@login_required
@require_POST
def task_done(request: HttpRequest, pk: int) -> HttpResponse:
    """Tick a task done (``done=1``) or open it again (anything else)."""
    task = _visible_task(request, pk)
    done = request.POST.get("done") == "1"
    try:
        task_actions.set_task_done(actor=_user(request), task=task, done=done)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    target = _target(request)
    if target == HOME_CARD:
        return _home_card(request)
    if target == RECORD_CARD:
        record = record_of(task.module, task.record_id)
        if record is not None and access.can(_user(request), record, "view"):
            return _card(request, task.module, record)
        return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    messages.success(request, f"“{task.title}” is {'done' if done else 'open again'}.")
    return _back(request, task)


@login_required
@require_http_methods(["GET", "POST"])
def task_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """A task's page: change its title, due day, owner and notes, or delete it."""
    user = _user(request)
    task = _visible_task(request, pk)
    record = record_of(task.module, task.record_id)
    if record is None:
        raise Http404("This task's record is gone.")
    if not may_change(user, task, record):
        raise PermissionDenied("You may see this task but not change it.")
    if request.method == "POST":
        form = TaskForm(request.POST)
        if form.is_valid():
            try:
                task_actions.update_task(actor=user, task=task, changes=form.cleaned_data)
            except NotAllowed as exc:
                raise PermissionDenied(str(exc)) from None
            except RecordInvalid as exc:
                form.add_refusal(exc)
            else:
                messages.success(request, f"Task “{task.title}” saved.")
                return _after(user, task.module, task.record_id)
    else:
        form = TaskForm(
            initial={
                "title": task.title,
                "due": task.due,
                "owner": task.owner_id,
                "notes": task.notes,
            }
        )
    record_name = str(record) if access.can(user, record, "view") else ""
    context = {
        "task": task,
        "form": form,
        "record": record,
        "record_name": record_name,
        "mod": MODULES[task.module],
    }
    return render(request, "web/records/task_form.html", context)


@login_required
@require_POST
def task_delete(request: HttpRequest, pk: int) -> HttpResponse:
    task = _visible_task(request, pk)
    module, record_id, title = task.module, task.record_id, task.title
    try:
        task_actions.delete_task(actor=_user(request), task=task)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    messages.success(request, f"Task “{title}” deleted.")
    return _after(_user(request), module, record_id)
