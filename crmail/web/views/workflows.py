"""Email workflows under Settings (SPEC F13): the list of rules, the editor with its dry
run, a rule's log of runs. Users see their own rules, administrators also the
organisation's; another user's rule is a 404 to everyone. Every change goes through
``crmail.workflows.actions``, like the API's and the command's."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crmail.config.words import count
from crmail.web.workflow_forms import KIND_LABELS, Editor, describe
from crmail.workflows import actions, dryrun, engine, queries
from crmail.workflows.models import RunState, Workflow
from crmail.workflows.spec import RuleSpec, SpecError

LOG_PAGE = 50
STATES = [("", "All runs"), ("failing", "Failed or retrying"), *RunState.choices]


def _mine(request: HttpRequest, pk: int) -> Workflow:
    return get_object_or_404(actions.manageable(request.user).select_related("owner"), pk=pk)


@login_required
def workflow_list(request: HttpRequest) -> HttpResponse:
    rows = list(queries.rules(request.user))
    for row in rows:
        row.summary = describe(row.spec, organisation=row.is_organisation)
    return render(
        request,
        "web/settings/workflows.html",
        {
            "organisation_rules": [w for w in rows if w.is_organisation],
            "own_rules": [w for w in rows if not w.is_organisation],
        },
    )


@login_required
def workflow_create(request: HttpRequest) -> HttpResponse:
    organisation = request.GET.get("organisation") == "1"
    if organisation and not request.user.is_admin:
        raise PermissionDenied(actions.ADMINS_ONLY)
    return _editor(request, None, organisation)


@login_required
def workflow_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _editor(request, _mine(request, pk), False)


def _editor(request: HttpRequest, workflow: Workflow | None, organisation: bool) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    editor = Editor(data, user=request.user, workflow=workflow, organisation=organisation)
    context: dict[str, Any] = {
        "editor": editor,
        "workflow": workflow,
        "spec_error": "",
        # Each answer's own: a page (or a test) can tell when the editor was redrawn.
        "render_id": secrets.token_hex(4),
    }
    command = data.get("edit", "") if data is not None else ""
    if data is not None and command == "try":
        context |= _try(editor, request, workflow)
    elif data is not None and not command and editor.form.is_valid():
        saved = _save(editor, request, workflow, context)
        if saved is not None:
            messages.success(
                request,
                f"Rule “{saved.name}” saved, {'on' if saved.enabled else 'off'}.",
            )
            return redirect("web:workflows")
    elif data is not None and not command:
        _spec_error(editor, context)
    return render(request, "web/settings/workflow_form.html", context)


def _spec_error(editor: Editor, context: dict[str, Any]) -> RuleSpec | None:
    try:
        return actions.check_spec(editor.spec(), organisation=editor.organisation, by=editor.user)
    except SpecError as exc:
        context["spec_error"] = str(exc)
        return None


def _save(
    editor: Editor, request: HttpRequest, workflow: Workflow | None, context: dict[str, Any]
) -> Workflow | None:
    data = editor.form.cleaned_data
    try:
        spec = editor.spec()
        if workflow is None:
            return actions.create_workflow(
                by=request.user,
                name=data["name"],
                description=data["description"],
                spec=spec,
                organisation=editor.organisation,
                enabled=data["enabled"],
            )
        return actions.update_workflow(
            workflow,
            by=request.user,
            name=data["name"],
            description=data["description"],
            spec=spec,
            enabled=data["enabled"],
        )
    except SpecError as exc:
        context["spec_error"] = str(exc)
    except actions.Invalid as exc:
        for error in exc.errors:
            if error["field"] == "spec":
                context["spec_error"] = error["message"]
            else:
                editor.form.add_error(
                    "name" if error["field"] == "name" else None, error["message"]
                )
    except actions.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    return None


def _try(editor: Editor, request: HttpRequest, workflow: Workflow | None) -> dict[str, Any]:
    """The dry run of the rule as the rows say it now (saved or not)."""
    context: dict[str, Any] = {"spec_error": "", "tried": True}
    rule = _spec_error(editor, context)
    if rule is None:
        return context
    owner = None if editor.organisation else (workflow.owner if workflow else request.user)
    context["dry_run"] = dryrun.try_rule(rule, owner=owner, viewer=request.user)
    return context


@login_required
@require_POST
def workflow_enabled(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = _mine(request, pk)
    on = request.POST.get("enabled") == "on"
    actions.set_enabled(workflow, on, by=request.user)
    messages.success(
        request,
        f"“{workflow.name}” is on: it runs on new mail."
        if on
        else f"“{workflow.name}” is off: it runs on nothing until you turn it on.",
    )
    return redirect("web:workflows")


@login_required
@require_POST
def workflow_move(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = _mine(request, pk)
    actions.move(workflow, by=request.user, up=request.POST.get("direction") != "down")
    return redirect("web:workflows")


@login_required
def workflow_delete(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = _mine(request, pk)
    if request.method == "POST":
        runs = workflow.runs.count()
        actions.delete_workflow(workflow, by=request.user)
        messages.success(
            request, f"Rule “{workflow.name}” deleted, with its log of {count(runs, 'run')}."
        )
        return redirect("web:workflows")
    return render(request, "web/settings/workflow_delete.html", {"workflow": workflow})


@login_required
def workflow_runs(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = _mine(request, pk)
    if request.method == "POST":
        return _retry(request, workflow)
    state = request.GET.get("state", "")
    if state not in {s for s, _ in STATES}:
        state = ""
    page = Paginator(queries.runs(workflow, state=state), LOG_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "web/settings/workflow_runs.html",
        {
            "workflow": workflow,
            "page": page,
            "runs": [
                (v, [(KIND_LABELS.get(o.get("kind"), o.get("kind")), o) for o in v.run.outcomes])
                for v in queries.shown(request.user, list(page.object_list))
            ],
            "state": state,
            "states": STATES,
        },
    )


def _retry(request: HttpRequest, workflow: Workflow) -> HttpResponse:
    raw = request.POST.get("run", "")
    ids = None if raw == "all" else ([int(raw)] if raw.isdigit() else [])
    say_retried(request, actions.retry_runs(workflow, by=request.user, ids=ids), "run")
    return redirect("web:workflow_runs", pk=workflow.pk)


def say_retried(request: HttpRequest, result: engine.Retried, noun: str) -> None:
    """What running failed runs again did, in words (the rule's log, Events)."""
    if result.done:
        messages.success(request, f"{count(result.done, noun)} done.")
    if result.failed:
        messages.error(
            request,
            f"{count(result.failed, noun)} failed again and "
            f"{'waits' if result.failed == 1 else 'wait'} for you: the error is below.",
        )
    if not result.done and not result.failed:
        messages.info(request, f"No failed {noun}s: they were done or run again meanwhile.")
