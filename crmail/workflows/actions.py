"""The writers of workflow rules: make, change, turn on or off, order, delete, and run
failed runs again. The settings pages, the API, the filter import and the command all
write through these, so each refuses the same things with the same words.

Who: every user manages their own rules, which act on their own mail; administrators also
manage the organisation's rules (no owner), which act on everyone's mail. Nobody sees or
changes another user's rules, administrators included: a rule and its runs are that
user's mail.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Max, Q, QuerySet

from crmail.people.models import User
from crmail.webhooks.models import Endpoint
from crmail.workflows import engine, fields
from crmail.workflows.imports import ImportedRule, ImportResult
from crmail.workflows.models import RunState, Workflow, WorkflowRun
from crmail.workflows.spec import ASSIGNEES, ActionKind, RuleSpec, SpecError

NAME_LIMIT = Workflow._meta.get_field("name").max_length or 200
ADMINS_ONLY = "Only administrators manage the organisation's rules."


class Invalid(Exception):
    """The input does not make a valid rule; ``errors`` lists ``{"field", "message"}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class NotAllowed(Exception):
    """The acting user may not do this."""


# --- who sees what ------------------------------------------------------------------------


def manageable(user: User) -> QuerySet[Workflow]:
    """The rules ``user`` sees and manages: their own, and (administrators) the
    organisation's. The only query of rules the pages, the API and the command use."""
    if not user.is_authenticated or not user.is_active:
        return Workflow.objects.none()
    scope = Q(owner_id=user.pk)
    if user.is_admin:
        scope |= Q(owner__isnull=True)
    return Workflow.objects.filter(scope)


def may_manage(user: User, workflow: Workflow) -> bool:
    return manageable(user).filter(pk=workflow.pk).exists()


# --- checking -------------------------------------------------------------------------------


def check_spec(data: Any, *, organisation: bool, by: User) -> RuleSpec:
    """The rule ``data`` describes, checked as ``by`` would save it: its shape
    (``spec.RuleSpec.load``), the record fields it names, the people it tells and the
    webhooks it calls. ``SpecError`` says what is wrong."""
    rule = RuleSpec.load(data, personal=not organisation)
    fields.check(rule)
    people: set[int] = set()
    for number, action in enumerate(rule.actions, 1):
        params = action.params
        if action.kind == ActionKind.CREATE_TASK:
            assignee = params.get("assignee", "record_owner")
            if assignee not in ASSIGNEES:
                people.add(assignee)
        elif action.kind == ActionKind.NOTIFY:
            people |= {u for u in params["users"] if u not in ASSIGNEES}
        elif action.kind == ActionKind.CALL_WEBHOOK:
            if not by.is_admin:
                raise SpecError(
                    f"Action {number}: only administrators' rules call webhooks (the "
                    "webhooks administrators registered)."
                )
            if not Endpoint.objects.filter(pk=params["endpoint_id"]).exists():
                raise SpecError(f"Action {number}: there is no webhook {params['endpoint_id']}.")
    if people:
        active = set(
            User.objects.filter(pk__in=people, is_active=True).values_list("pk", flat=True)
        )
        missing = sorted(people - active)
        if missing:
            raise SpecError(
                f"There is no active user with id {', '.join(map(str, missing))} to name "
                "in an action."
            )
    return rule


def _check_name(name: str | None, errors: list[dict[str, str]]) -> str | None:
    if name is None:
        return None
    name = " ".join(name.split())
    if not name:
        errors.append({"field": "name", "message": "Give the rule a name."})
    elif len(name) > NAME_LIMIT:
        errors.append({"field": "name", "message": f"A name is at most {NAME_LIMIT} characters."})
    return name


def _checked(
    *, by: User, organisation: bool, name: str | None, spec: Any | None
) -> tuple[str | None, RuleSpec | None]:
    errors: list[dict[str, str]] = []
    name = _check_name(name, errors)
    rule = None
    if spec is not None:
        try:
            rule = check_spec(spec, organisation=organisation, by=by)
        except SpecError as exc:
            errors.append({"field": "spec", "message": str(exc)})
    if errors:
        raise Invalid(errors)
    return name, rule


# --- writing --------------------------------------------------------------------------------


def _chain(owner_id: int | None) -> QuerySet[Workflow]:
    return Workflow.objects.filter(owner_id=owner_id)


def create_workflow(
    *,
    by: User,
    name: str,
    spec: Any,
    description: str = "",
    organisation: bool = False,
    enabled: bool = False,
) -> Workflow:
    """A new rule at the end of its chain: ``by``'s own, or the organisation's
    (administrators only). Off unless ``enabled``: try it on past mail first."""
    if organisation and not by.is_admin:
        raise NotAllowed(ADMINS_ONLY)
    checked_name, rule = _checked(by=by, organisation=organisation, name=name, spec=spec)
    assert checked_name is not None and rule is not None
    owner = None if organisation else by
    with transaction.atomic():
        last = _chain(owner.pk if owner else None).aggregate(m=Max("position"))["m"]
        return Workflow.objects.create(
            name=checked_name,
            description=description.strip(),
            owner=owner,
            enabled=enabled,
            position=0 if last is None else last + 1,
            spec=rule.dump(),
            created_by=by,
            updated_by=by,
        )


def _check_may(by: User, workflow: Workflow) -> None:
    if not may_manage(by, workflow):
        raise NotAllowed("No such rule.")


def update_workflow(
    workflow: Workflow,
    *,
    by: User,
    name: str | None = None,
    description: str | None = None,
    spec: Any | None = None,
    enabled: bool | None = None,
) -> Workflow:
    """Change what is given. A changed rule acts on mail that arrives from now on; runs
    made before keep what they did."""
    _check_may(by, workflow)
    checked_name, rule = _checked(
        by=by, organisation=workflow.is_organisation, name=name, spec=spec
    )
    changed = ["updated_by", "updated_at"]
    if checked_name is not None:
        workflow.name = checked_name
        changed.append("name")
    if description is not None:
        workflow.description = description.strip()
        changed.append("description")
    if rule is not None:
        workflow.spec = rule.dump()
        changed.append("spec")
    if enabled is not None:
        workflow.enabled = enabled
        changed.append("enabled")
    workflow.updated_by = by
    workflow.save(update_fields=changed)
    return workflow


def set_enabled(workflow: Workflow, on: bool, *, by: User) -> Workflow:
    return update_workflow(workflow, by=by, enabled=on)


def move(workflow: Workflow, *, by: User, up: bool) -> Workflow:
    """Swap the rule with the one before (``up``) or after it in its chain."""
    _check_may(by, workflow)
    with transaction.atomic():
        chain = list(
            _chain(workflow.owner_id).order_by("position", "pk").values_list("pk", flat=True)
        )
        index = chain.index(workflow.pk)
        return place(workflow, by=by, position=max(0, index - 1 if up else index + 1))


def place(workflow: Workflow, *, by: User, position: int) -> Workflow:
    """Move the rule to ``position`` in its chain (0: it runs first; past the end: last);
    the others keep their order."""
    _check_may(by, workflow)
    with transaction.atomic():
        chain = list(_chain(workflow.owner_id).select_for_update().order_by("position", "pk"))
        rest = [w for w in chain if w.pk != workflow.pk]
        rest.insert(min(position, len(rest)), workflow)
        for index, row in enumerate(rest):
            if row.position != index:
                Workflow.objects.filter(pk=row.pk).update(position=index)
    workflow.refresh_from_db()
    return workflow


def delete_workflow(workflow: Workflow, *, by: User) -> None:
    """The rule and its log of runs (what its runs made stays: tasks, links, tags)."""
    _check_may(by, workflow)
    workflow.delete()


def retry_runs(workflow: Workflow, *, by: User, ids: Iterable[int] | None = None) -> engine.Retried:
    """Run the rule's failed runs again now (``ids``: those; None: every failed one)."""
    _check_may(by, workflow)
    rows = WorkflowRun.objects.filter(
        workflow=workflow, state__in=(RunState.FAILED, RunState.RETRYING)
    )
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    return engine.retry(list(rows.order_by("pk")))


def retry_any(ids: Iterable[int] | None = None) -> engine.Retried:
    """For administrators (``/settings/events/``, ``crmail workflows retry``): run failed
    runs of any rule again (``ids``, or every failed one). Only the run is touched: its
    rule acts as it always does, never as the administrator."""
    rows = WorkflowRun.objects.filter(state__in=(RunState.FAILED, RunState.RETRYING))
    rows = rows.filter(pk__in=list(ids)) if ids is not None else rows.filter(state=RunState.FAILED)
    return engine.retry(list(rows.order_by("pk")))


# --- importing --------------------------------------------------------------------------------


def import_rules(result: ImportResult, *, by: User) -> list[Workflow]:
    """Every rule of an import (``crmail.workflows.imports``) as ``by``'s own, off, at the
    end of their chain in the file's order: all in one transaction, or none when one is
    refused (``Invalid`` names it). Each rule's description says where it came from and
    how its meaning differs from the original."""
    made: list[Workflow] = []
    with transaction.atomic():
        for rule in result.rules:
            try:
                made.append(
                    create_workflow(
                        by=by,
                        name=rule.name,
                        spec=rule.dump(),
                        description=imported_description(result, rule),
                    )
                )
            except Invalid as exc:
                raise Invalid(
                    [
                        {"field": "rules", "message": f"{rule.name}: {e['message']}"}
                        for e in exc.errors
                    ]
                ) from None
    return made


def imported_description(result: ImportResult, rule: ImportedRule) -> str:
    numbers = [line.number for line in rule.lines]
    where = (
        f"line {numbers[0]}" if len(set(numbers)) == 1 else f"lines {numbers[0]} to {numbers[-1]}"
    )
    return " ".join([f"Imported from {result.source_name()}, {where}.", *rule.notes])
