"""Reading rules and their runs for the pages, the API and the command.

A run names its message only to a viewer who may see that message
(``sharing.visibility``): the log of an organisation's rule shows an administrator that a
rule ran on a colleague's mail and how it went, never what the mail says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery

from crmail.mail.models import Message
from crmail.people.models import User
from crmail.sharing.visibility import visible_messages
from crmail.workflows.actions import manageable
from crmail.workflows.models import RunState, Workflow, WorkflowRun

FAILING = (RunState.FAILED, RunState.RETRYING)


def rules(user: User) -> QuerySet[Workflow]:
    """The rules ``user`` manages (the organisation's first, then their own, each in
    order), each with its latest run (``last_run_at``, ``last_state``) and how many of its
    runs failed or are being retried (``failing``)."""
    latest = WorkflowRun.objects.filter(workflow=OuterRef("pk")).order_by("-created_at", "-pk")
    return (
        manageable(user)
        .select_related("owner")
        .annotate(
            last_run_at=Subquery(latest.values("created_at")[:1]),
            last_state=Subquery(latest.values("state")[:1]),
            failing=Count("runs", filter=Q(runs__state__in=FAILING)),
            matched=Count("runs", filter=~Q(runs__state=RunState.NOT_MATCHED)),
        )
        .order_by(F("owner_id").asc(nulls_first=True), "position", "pk")
    )


def runs(workflow: Workflow, *, state: str | None = None) -> QuerySet[WorkflowRun]:
    """The rule's runs, newest first (``state``: only those, "failing": failed and
    retrying)."""
    rows = WorkflowRun.objects.filter(workflow=workflow)
    if state == "failing":
        rows = rows.filter(state__in=FAILING)
    elif state:
        rows = rows.filter(state=state)
    return rows.order_by("-created_at", "-pk")


@dataclass(frozen=True)
class RunView:
    """A run as one viewer may be shown it: the message only if they may see it."""

    run: WorkflowRun
    message: Message | None

    @property
    def when(self) -> datetime:
        return self.run.created_at


def shown(viewer: User, rows: list[WorkflowRun]) -> list[RunView]:
    """``rows`` with the messages ``viewer`` may see (one query)."""
    ids = {r.message_id for r in rows}
    messages = {
        m.pk: m
        for m in visible_messages(viewer)
        .filter(pk__in=ids)
        .only("pk", "subject", "from_address", "from_name", "date")
    }
    return [RunView(r, messages.get(r.message_id)) for r in rows]


def failing(*, parked: bool | None = None) -> QuerySet[WorkflowRun]:
    """For administrators (``/settings/events/``, ``crmail workflows runs``): the runs of
    any rule that failed (``parked``: waiting for someone) or are being retried. Rule,
    owner and error only: never the mail."""
    rows = WorkflowRun.objects.filter(state__in=FAILING)
    if parked is True:
        rows = rows.filter(state=RunState.FAILED)
    elif parked is False:
        rows = rows.filter(state=RunState.RETRYING)
    return rows.select_related("workflow", "workflow__owner").order_by("-updated_at", "-pk")
