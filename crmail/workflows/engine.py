"""Running rules on messages: once per rule and message, each run with its outcome.

``run`` is called by the outbox's ``workflows`` consumer, in its transaction, once linking
has handled the messages (``consumer.py``). For each message it finds whose mail it is
(``scope``), then walks the chains of enabled rules in order — the organisation's, then
each owner's own — and for each rule whose trigger applies and that has no run on the
message yet, makes its ``WorkflowRun`` (unique per rule and message), checks the
conditions and does the actions. A rule whose "stop" ran ends its chain for the message.

Everything an action writes in crmail's database commits with the run row and the
consumer's position, so a crash rolls all of it back and the events are handed out again:
a rule acts on a message exactly once. An action that fails is rolled back alone (a
savepoint), its reason kept; the run retries it after 30 s, 2 min, 10 min, 1 h and 4 h
(``work``, from the minute's sweep), then waits as *failed* for its owner or an
administrator to run it again (``retry``). The actions on the mailbox's copy talk to the
mail server, so they wait for ``work`` after the commit.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from crmail.events.dispatch import RETRY_DELAYS
from crmail.workflows import conditions, facts, scope, steps
from crmail.workflows.models import ActionState, RunState, Workflow, WorkflowRun
from crmail.workflows.spec import INTELLIGENCE_FIELDS, RuleSpec, SpecError, Trigger

log = logging.getLogger(__name__)

CLAIM = timedelta(minutes=5)  # a run being worked on is left alone this long
ERROR_LIMIT = 4000
TRIGGER_ORDER = (Trigger.INCOMING, Trigger.OUTGOING, Trigger.DROPBOX)


def enabled_rules() -> list[Workflow]:
    """Every enabled rule, in chain order, with its owner."""
    return list(
        Workflow.objects.filter(enabled=True)
        .select_related("owner", "updated_by")
        .order_by("position", "pk")
    )


def _rule(workflow: Workflow) -> RuleSpec | None:
    try:
        return workflow.rule()
    except SpecError:  # saved through the writers, which check; a hand edit is skipped
        log.warning("workflows: rule %s does not load; skipped", workflow.pk)
        return None


# --- running rules on new mail --------------------------------------------------------------


def uses_intelligence(rule: RuleSpec) -> bool:
    """Whether a condition of ``rule`` looks at what email intelligence found."""
    return any(c.field in INTELLIGENCE_FIELDS for c in rule.conditions)


def run(message_ids: Iterable[int]) -> list[WorkflowRun]:
    """Run the enabled rules on ``message_ids`` (in the caller's transaction); the runs
    made. Messages and rules that already have a run are left as they are."""
    rules = [(w, r) for w in enabled_rules() if (r := _rule(w)) is not None]
    ids = list(dict.fromkeys(message_ids))
    if not rules or not ids:
        return []
    held = scope.holders(ids)
    if not held:
        return []
    organisation = [(w, r) for w, r in rules if w.owner_id is None]
    personal: dict[int, list[tuple[Workflow, RuleSpec]]] = defaultdict(list)
    for w, r in rules:
        if w.owner_id is not None and w.owner.is_active:
            personal[w.owner_id].append((w, r))
    found = facts.load(held, intelligence=any(uses_intelligence(r) for _, r in rules))
    existing = {
        (row.workflow_id, row.message_id): row
        for row in WorkflowRun.objects.filter(
            message_id__in=list(found), workflow_id__in=[w.pk for w, _ in rules]
        ).only("pk", "workflow_id", "message_id", "stopped")
    }
    made: list[WorkflowRun] = []
    for message_id, message_facts in found.items():
        who = held[message_id]
        chains: list[tuple[int | None, list[tuple[Workflow, RuleSpec]]]] = [(None, organisation)]
        chains += [(owner, personal[owner]) for owner in sorted(who) if owner in personal]
        for owner_id, chain in chains:
            for workflow, rule in chain:
                prior = existing.get((workflow.pk, message_id))
                if prior is not None:
                    if prior.stopped:
                        break
                    continue
                owners = _owners(who, rule, owner_id)
                if not owners:
                    continue
                triggers = set().union(*(who[o] for o in owners)) & rule.triggers
                row = _start(workflow, rule, message_facts, owners, _first(triggers))
                if row is None:
                    continue
                made.append(row)
                if row.stopped:
                    break
    return made


def _owners(who: dict[int, set[Trigger]], rule: RuleSpec, owner_id: int | None) -> list[int]:
    """The mailbox owners whose mail the message is for this rule: the rule's owner (a
    user's rule), or every holder whose triggers it has (the organisation's)."""
    if owner_id is not None:
        return [owner_id] if who.get(owner_id, set()) & rule.triggers else []
    return sorted(o for o, triggers in who.items() if triggers & rule.triggers)


def _first(triggers: set[Trigger]) -> Trigger:
    return next(t for t in TRIGGER_ORDER if t in triggers)


def _start(
    workflow: Workflow,
    rule: RuleSpec,
    message_facts: conditions.MessageFacts,
    owners: list[int],
    trigger: Trigger,
) -> WorkflowRun | None:
    """Make the run of ``workflow`` on the message, check and act."""
    records = facts.visible_to(workflow.owner, message_facts.records)
    matched = conditions.holds(rule, message_facts, records)
    row = WorkflowRun(
        workflow=workflow,
        message_id=message_facts.id,
        trigger=str(trigger),
        mailbox_owner_id=owners[0],
        state=RunState.MATCHED if matched else RunState.NOT_MATCHED,
        actions=[a.dump() for a in rule.actions] if matched else [],
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # made meanwhile by another path: that run is the one
        return None
    if matched:
        ctx = steps.Context(workflow, row, message_facts, records, owners)
        _act(ctx, later=False)
        _finish(row)
        if row.state == RunState.MATCHED:
            transaction.on_commit(lambda: _queue(row.pk))
    return row


def _act(ctx: steps.Context, *, later: bool) -> None:
    """Do the run's pending actions and record each outcome on the run. In the outbox's
    transaction (``later=False``) the actions on the mailbox's copy wait; afterwards
    (``later=True``, from ``work``) they are done too, and each outcome is saved as soon as
    its action is, in the same transaction for crmail's own writes: a crash never leaves a
    write without its outcome, so nothing is done twice."""
    run = ctx.run
    outcomes = list(run.outcomes) + [{} for _ in range(len(run.actions) - len(run.outcomes))]
    for index, action in run.pending():
        if steps.is_mailbox_action(action):
            if not later:
                outcomes[index] = {
                    "kind": action.get("kind", ""),
                    "state": ActionState.PENDING,
                    "detail": "Waiting for the mail server.",
                }
                continue
            outcomes[index] = _attempt(ctx, index, action)  # the server first, no lock held
            WorkflowRun.objects.filter(pk=run.pk).update(outcomes=outcomes)
            continue
        with transaction.atomic():
            outcomes[index] = _attempt(ctx, index, action)
            if later:
                WorkflowRun.objects.filter(pk=run.pk).update(outcomes=outcomes)
    run.outcomes = outcomes


def _attempt(ctx: steps.Context, index: int, action: dict) -> dict:
    """One action, its writes in a savepoint of their own: a failure undoes only them."""
    kind = action.get("kind", "")
    try:
        if steps.is_mailbox_action(action):
            outcome = steps.do(ctx, index, action)
        else:
            with transaction.atomic():
                outcome = steps.do(ctx, index, action)
    except steps.StepFailed as exc:
        outcome = {"state": ActionState.FAILED, "detail": str(exc)}
    except Exception as exc:
        log.exception("workflows: action %s of run %s failed", kind, ctx.run.pk)
        outcome = {"state": ActionState.FAILED, "detail": f"{type(exc).__name__}: {exc}"}
    return {"kind": kind, **outcome}


def _finish(run: WorkflowRun, *, now: datetime | None = None) -> None:
    """The run's state from its outcomes, saved: done, still waiting for the server,
    retrying after its next pause, or failed for good (waiting for someone)."""
    now = now or timezone.now()
    states = [o.get("state") for o in run.outcomes]
    failed = [o for o in run.outcomes if o.get("state") == ActionState.FAILED]
    if failed:
        run.attempts += 1
        run.error = "; ".join(f"{o['kind']}: {o['detail']}" for o in failed)[:ERROR_LIMIT]
        if run.attempts <= len(RETRY_DELAYS):
            run.state = RunState.RETRYING
            run.next_try_at = now + RETRY_DELAYS[run.attempts - 1]
        else:
            run.state = RunState.FAILED
            run.next_try_at = None
            log.error("workflows: run %s failed for good: %s", run.pk, run.error)
        if ActionState.PENDING in states:
            run.next_try_at = now  # the server's part waits for no one
    elif ActionState.PENDING in states:
        run.state = RunState.MATCHED
        run.next_try_at = now
        run.error = ""
    else:
        run.attempts += 1
        run.state = RunState.DONE
        run.next_try_at = None
        run.error = ""
    run.save(
        update_fields=[
            "state",
            "outcomes",
            "stopped",
            "error",
            "attempts",
            "next_try_at",
            "updated_at",
        ]
    )


def _queue(run_id: int) -> None:
    from crmail.workflows import tasks

    tasks.work_soon([run_id])


# --- after the commit: the server's part, retries ---------------------------------------------


def work(run_id: int, *, now: datetime | None = None) -> WorkflowRun | None:
    """Do what a run still has to do, if it is due and nobody else is at it: its actions
    on the mailbox's copy, and those that failed. None when there was nothing to do."""
    now = now or timezone.now()
    claimed = WorkflowRun.objects.filter(
        pk=run_id,
        state__in=(RunState.MATCHED, RunState.RETRYING),
        next_try_at__lte=now,
    ).update(next_try_at=now + CLAIM)
    if not claimed:
        return None
    run = (
        WorkflowRun.objects.select_related("workflow", "workflow__owner", "workflow__updated_by")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        return None
    ctx = _context(run)
    if ctx is None:
        run.outcomes = [
            {**o, "state": ActionState.SKIPPED, "detail": "The message was deleted."}
            if o.get("state") in (ActionState.PENDING, ActionState.FAILED)
            else o
            for o in run.outcomes
        ]
        _finish(run, now=now)
        return run
    _act(ctx, later=True)
    _finish(run, now=now)
    return run


def _context(run: WorkflowRun) -> steps.Context | None:
    found = facts.load([run.message_id]).get(run.message_id)
    if found is None:
        return None
    workflow = run.workflow
    if workflow.owner_id is not None:
        owners = [workflow.owner_id]
    else:
        rule = _rule(workflow)
        who = scope.holders([run.message_id], fresh_only=False).get(run.message_id, {})
        owners = _owners(who, rule, None) if rule is not None else []
        owners = owners or ([run.mailbox_owner_id] if run.mailbox_owner_id else [])
    records = facts.visible_to(workflow.owner, found.records)
    return steps.Context(workflow, run, found, records, owners)


def due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Runs waiting for ``work``: retries whose pause is over, the server's part of new
    runs, and runs whose worker died (its claim lapsed)."""
    now = now or timezone.now()
    return list(
        WorkflowRun.objects.filter(
            state__in=(RunState.MATCHED, RunState.RETRYING), next_try_at__lte=now
        )
        .order_by("next_try_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


@dataclass(frozen=True)
class Retried:
    done: int
    failed: int


def retry(runs: Sequence[WorkflowRun], *, now: datetime | None = None) -> Retried:
    """Run the failed (or retrying) ``runs`` again now, in the caller; one that fails
    again waits as failed again at once."""
    now = now or timezone.now()
    finished = failed = 0
    for row in runs:
        if row.state not in (RunState.FAILED, RunState.RETRYING):
            continue
        WorkflowRun.objects.filter(pk=row.pk).update(
            state=RunState.RETRYING,
            next_try_at=now,
            attempts=max(row.attempts, len(RETRY_DELAYS)),
        )
        result = work(row.pk, now=now)
        if result is not None and result.state == RunState.DONE:
            finished += 1
        else:
            failed += 1
    return Retried(done=finished, failed=failed)
