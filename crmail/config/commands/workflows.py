"""``crmail workflows``: the workflow runs whose actions failed (retried by themselves with
backoff, then waiting for someone), and running them again — as ``crmail events`` does for
the outbox's consumers. The mail itself is never shown: a rule's owner reads it in the
rule's log."""

from __future__ import annotations

import argparse

from rich.table import Table
from rich.text import Text

from crmail.config.commands.base import CommandError, Output, require_ready
from crmail.config.words import count


def register(commands: argparse._SubParsersAction) -> None:
    workflows = commands.add_parser(
        "workflows",
        help="email workflow rules: failed runs",
        description="Each workflow rule runs once on each new message it covers. An action "
        "that fails is tried again with growing pauses for about five hours; then the run "
        "waits as failed until it is run again here, on the rule's log or on Events.",
    )
    sub = workflows.add_subparsers(dest="workflows_command", metavar="COMMAND")
    workflows.set_defaults(
        handler=lambda args, out: workflows.print_help() or 2, needs_django=False
    )
    runs = sub.add_parser(
        "runs",
        help="list the runs whose actions failed",
        description="List failed runs (and, with --all, those still being retried).",
    )
    runs.add_argument("--all", action="store_true", help="also those still being retried")
    runs.add_argument("--rule", type=int, metavar="ID", help="only the runs of this rule")
    runs.set_defaults(handler=run_runs, needs_django=True)
    retry = sub.add_parser(
        "retry",
        help="run failed runs again now",
        description="Run failed runs again now, each once: the actions that failed are done "
        "again (the others are not); one that fails again waits again with its new error.",
    )
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", type=int, default=[], metavar="ID", help="run ids")
    which.add_argument("--all", action="store_true", help="every failed run")
    retry.set_defaults(handler=run_retry, needs_django=True)


def run_runs(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.config import dates
    from crmail.workflows import queries

    rows = queries.failing(parked=None if args.all else True)
    if args.rule is not None:
        rows = rows.filter(workflow_id=args.rule)
    rows = list(rows[:500])
    if not rows:
        out.say("No failed runs." if not args.all else "No failed or retrying runs.")
        return 0
    table = Table("ID", "Rule", "Owner", "Message", "Attempts", "State", "Error")
    for r in rows:
        owner = r.workflow.owner.email if r.workflow.owner else "organisation"
        state = "failed" if r.state == "failed" else f"retry at {dates.when(r.next_try_at)}"
        table.add_row(
            str(r.pk),
            Text(f"{r.workflow.name} (#{r.workflow_id})"),
            Text(owner),
            str(r.message_id),
            str(r.attempts),
            state,
            Text(r.error.splitlines()[0] if r.error else ""),
        )
    out.out.print(table)
    return 0


def run_retry(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.workflows import actions
    from crmail.workflows.models import RunState, WorkflowRun

    if not args.all:
        known = set(
            WorkflowRun.objects.filter(
                pk__in=args.ids, state__in=(RunState.FAILED, RunState.RETRYING)
            ).values_list("pk", flat=True)
        )
        missing = sorted(set(args.ids) - known)
        if missing:
            raise CommandError(
                f"No failed run with id {', '.join(map(str, missing))}.",
                hint="`crmail workflows runs --all` lists them.",
            )
    result = actions.retry_any(None if args.all else args.ids)
    if not result.done and not result.failed:
        out.say("No failed runs.")
        return 0
    out.done(f"{count(result.done, 'run')} done.")
    if result.failed:
        out.problem(
            f"{count(result.failed, 'run')} failed again: `crmail workflows runs` shows why."
        )
        return 1
    return 0
