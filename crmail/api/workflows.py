"""``/workflows``: email workflow rules (SPEC F13; decision 035). Each user manages their
own rules, which act on their own mail; administrators also the organisation's, which act
on everyone's. Another user's rule answers 404, administrators included. A rule's runs
name their message only to a caller who may see it."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from django.db.models import F
from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.errors import Forbidden, Invalid
from crmail.api.schemas import Id, Input, ListParams, Page, errors_doc
from crmail.people.models import User
from crmail.workflows import actions, dryrun, queries
from crmail.workflows.fields import PLURAL
from crmail.workflows.models import RunState, Workflow
from crmail.workflows.spec import SpecError

router = Router(tags=["Workflows"])

READ = errors_doc(401, 404, 422)
WRITE = errors_doc(400, 401, 403, 404, 422)

SPEC_DOC = (
    "The rule: `triggers` (incoming, outgoing, dropbox), `match` (all or any), "
    "`conditions` ([{field, op, values, name}]) and `actions` ([{kind, params}]), as "
    "docs/decisions/035-email-workflows.md describes."
)


@contextmanager
def _errors():  # type: ignore[no-untyped-def]
    try:
        yield
    except actions.Invalid as exc:
        raise Invalid(exc.errors) from None
    except SpecError as exc:
        raise Invalid.one("spec", str(exc)) from None
    except actions.NotAllowed as exc:
        raise Forbidden(str(exc)) from None


class WorkflowOut(Schema):
    id: int
    name: str
    description: str
    organisation: bool = Field(description="An organisation's rule (acts on everyone's mail).")
    owner_id: int | None = Field(description="The user whose mail it acts on; null: everyone's.")
    enabled: bool
    position: int = Field(description="Its place in its chain: rules run in this order.")
    spec: dict[str, Any] = Field(description=SPEC_DOC)
    created_at: datetime
    updated_at: datetime


class WorkflowIn(Input):
    name: str = Field(max_length=200)
    description: str = Field("", max_length=5000)
    organisation: bool = Field(
        False, description="An organisation's rule (administrators only); else your own."
    )
    enabled: bool = Field(False, description="Off by default: try it (dry-run) first.")
    spec: dict[str, Any] = Field(description=SPEC_DOC)


class WorkflowPatch(Input):
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    enabled: bool | None = None
    spec: dict[str, Any] | None = Field(None, description=SPEC_DOC)
    position: int | None = Field(
        None, ge=0, le=100_000, description="Move it to this place in its chain (0: first)."
    )


class RunMessageOut(Schema):
    id: int
    subject: str
    from_address: str
    date: datetime | None


class RunOut(Schema):
    id: int
    state: RunState
    trigger: str = Field(description="incoming, outgoing or dropbox.")
    message: RunMessageOut | None = Field(
        description="The message, when you may see it; null otherwise."
    )
    outcomes: list[dict[str, Any]] = Field(
        description='Per action: {"kind", "state" (done, skipped, failed, pending), "detail"}.'
    )
    error: str
    attempts: int
    next_try_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RunFilters(ListParams):
    state: RunState | Literal["failing"] | None = Field(
        None, description='Only runs in this state ("failing": failed or being retried).'
    )


class DryRunIn(Input):
    limit: int = Field(dryrun.LIMIT, ge=1, le=dryrun.LIMIT, description="How many messages.")


class DryRunMatchOut(Schema):
    message_id: int
    subject: str
    from_address: str
    date: datetime | None
    records: list[dict[str, Any]] = Field(description='[{"module", "record_id", "name"}]')


class DryRunOut(Schema):
    tried: int = Field(description="How many of the newest messages it covers were tried.")
    matched: int
    hidden: int = Field(description="Matches among mail you may not see (not listed).")
    matches: list[DryRunMatchOut] = Field(description="The newest matches you may see.")


class RetryIn(Input):
    runs: list[Id] | None = Field(
        None, max_length=1000, description="These runs; null: every failed one of the rule."
    )


class RetryOut(Schema):
    done: int
    failed: int = Field(description="Failed again: each waits again, with its new error.")


def _out(w: Workflow) -> dict[str, Any]:
    return {
        "id": w.pk,
        "name": w.name,
        "description": w.description,
        "organisation": w.is_organisation,
        "owner_id": w.owner_id,
        "enabled": w.enabled,
        "position": w.position,
        "spec": w.spec,
        "created_at": w.created_at,
        "updated_at": w.updated_at,
    }


def _run_out(view: queries.RunView) -> dict[str, Any]:
    run, message = view.run, view.message
    return {
        "id": run.pk,
        "state": run.state,
        "trigger": run.trigger,
        "message": None
        if message is None
        else {
            "id": message.pk,
            "subject": message.subject,
            "from_address": message.from_address,
            "date": message.date,
        },
        "outcomes": run.outcomes,
        "error": run.error,
        "attempts": run.attempts,
        "next_try_at": run.next_try_at,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
    }


def _workflow(user: User, pk: int) -> Workflow:
    return records.get_or_404(actions.manageable(user).select_related("owner"), pk)


@router.get("", response={200: Page[WorkflowOut]}, openapi_extra=READ, summary="List rules")
def list_workflows(request: HttpRequest, params: Query[ListParams]) -> dict[str, Any]:
    """Yours, and (administrators) the organisation's: those first, each chain in order."""
    user = current_user(request)
    rows = actions.manageable(user).order_by(F("owner_id").asc(nulls_first=True), "position", "pk")
    page = records.page(rows, params)
    page["items"] = [_out(w) for w in page["items"]]
    return page


@router.post("", response={201: WorkflowOut}, openapi_extra=WRITE, summary="Add a rule")
def create_workflow(request: HttpRequest, payload: WorkflowIn) -> dict[str, Any]:
    """Added at the end of its chain, off unless ``enabled``."""
    user = current_user(request)
    with _errors():
        workflow = actions.create_workflow(
            by=user,
            name=payload.name,
            description=payload.description,
            spec=payload.spec,
            organisation=payload.organisation,
            enabled=payload.enabled,
        )
    return _out(workflow)


@router.get("/{id}", response={200: WorkflowOut}, openapi_extra=READ, summary="Read a rule")
def read_workflow(request: HttpRequest, id: Id) -> dict[str, Any]:
    return _out(_workflow(current_user(request), id))


@router.patch("/{id}", response={200: WorkflowOut}, openapi_extra=WRITE, summary="Change a rule")
def update_workflow(request: HttpRequest, id: Id, payload: WorkflowPatch) -> dict[str, Any]:
    """Fields given change; null or absent leave them. A changed rule acts on mail that
    arrives from now on."""
    user = current_user(request)
    workflow = _workflow(user, id)
    with _errors():
        actions.update_workflow(
            workflow,
            by=user,
            name=payload.name,
            description=payload.description,
            spec=payload.spec,
            enabled=payload.enabled,
        )
        if payload.position is not None:
            actions.place(workflow, by=user, position=payload.position)
    workflow.refresh_from_db()
    return _out(workflow)


@router.delete(
    "/{id}", response={204: None}, openapi_extra=WRITE, summary="Delete a rule and its runs"
)
def delete_workflow(request: HttpRequest, id: Id) -> None:
    """What its runs made (tasks, links, tags) stays."""
    user = current_user(request)
    workflow = _workflow(user, id)
    with _errors():
        actions.delete_workflow(workflow, by=user)


@router.get("/{id}/runs", response={200: Page[RunOut]}, openapi_extra=READ, summary="A rule's runs")
def list_runs(request: HttpRequest, id: Id, filters: Query[RunFilters]) -> dict[str, Any]:
    """Newest first: on which message it ran (when you may see it), whether it matched,
    and what each action did."""
    user = current_user(request)
    workflow = _workflow(user, id)
    page = records.page(queries.runs(workflow, state=filters.state), filters)
    page["items"] = [_run_out(v) for v in queries.shown(user, page["items"])]
    return page


@router.post(
    "/{id}/dry-run",
    response={200: DryRunOut},
    openapi_extra=WRITE,
    summary="Try a rule on past mail",
)
def dry_run(request: HttpRequest, id: Id, payload: DryRunIn) -> dict[str, Any]:
    """How many of the newest ``limit`` messages the rule covers it would have matched,
    with the newest matches you may see. Nothing is done."""
    user = current_user(request)
    workflow = _workflow(user, id)
    with _errors():
        rule = workflow.rule()
    result = dryrun.try_rule(rule, owner=workflow.owner, viewer=user, limit=payload.limit)
    return {
        "tried": result.tried,
        "matched": result.matched,
        "hidden": result.hidden,
        "matches": [
            {
                "message_id": s.message_id,
                "subject": s.subject,
                "from_address": s.from_address,
                "date": s.date,
                "records": [
                    {"module": PLURAL[r.module], "record_id": r.id, "name": r.name}
                    for r in s.records
                ],
            }
            for s in result.shown
        ],
    }


@router.post(
    "/{id}/retry", response={200: RetryOut}, openapi_extra=WRITE, summary="Run failed runs again"
)
def retry(request: HttpRequest, id: Id, payload: RetryIn) -> dict[str, Any]:
    """Now, each once more; one that fails again waits again as failed."""
    user = current_user(request)
    workflow = _workflow(user, id)
    with _errors():
        result = actions.retry_runs(workflow, by=user, ids=payload.runs)
    return {"done": result.done, "failed": result.failed}
