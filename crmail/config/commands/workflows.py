"""``crmail workflows``: the workflow runs whose actions failed (retried by themselves with
backoff, then waiting for someone), and running them again — as ``crmail events`` does for
the outbox's consumers. The mail itself is never shown: a rule's owner reads it in the
rule's log."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table
from rich.text import Text

from crmail.config.commands.base import CommandError, Output, active_user, require_ready
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
    imports = sub.add_parser(
        "import",
        help="import Gmail filters or a Sieve script as a user's rules",
        description="Import a Gmail filters export (mailFilters.xml) or a Sieve script as the "
        "user's own rules, all at once and off (try them on past mail, then turn them on). A "
        "filter with any part crmail cannot do is not imported; each such line is listed "
        "with the reason.",
    )
    imports.add_argument("file", type=Path, metavar="FILE", help="mailFilters.xml or a .sieve file")
    imports.add_argument("--user", required=True, metavar="EMAIL", help="whose rules they become")
    imports.add_argument(
        "--dry-run", action="store_true", help="list what would be imported; make nothing"
    )
    imports.set_defaults(handler=run_import, needs_django=True)


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


def run_import(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.workflows import actions
    from crmail.workflows.imports import MAX_BYTES, FilterImportError, read_file

    user = active_user(args.user, "--user")
    path: Path = args.file
    try:
        if not path.is_file():
            raise CommandError(f"There is no file {path}.")
        if path.stat().st_size > MAX_BYTES:
            raise CommandError(f"{path}: the file is larger than 1 MB; filters are smaller.")
        result = read_file(path.read_bytes())
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except FilterImportError as exc:
        raise CommandError(f"{path}: {exc}") from None
    if result.rules:
        table = Table("Rule", "Conditions", "Actions", title=f"Rules from {path.name}")
        for rule in result.rules:
            spec = rule.dump()
            conditions = f" {spec['match']} ".join(
                f"{c['field']}{' ' + c['name'] if c.get('name') else ''} {c['op']} "
                + ", ".join(map(str, c["values"]))
                for c in spec["conditions"]
            )
            steps = ", ".join(
                a["kind"] + "".join(f" {v}" for v in a["params"].values()) for a in spec["actions"]
            )
            table.add_row(Text(rule.name), Text(conditions or "every message"), Text(steps))
        out.out.print(table)
    if result.skipped:
        table = Table("Line", "In the file", "Why", title="Not imported")
        for problem in result.problems:
            table.add_row(str(problem.line), Text(problem.text), Text(problem.reason))
        out.out.print(table)
    skipped = count(len(result.skipped), "filter")
    if args.dry_run:
        out.say(
            f"Dry run: {count(len(result.rules), 'rule')} would be imported; {skipped} cannot "
            "be. Nothing was made."
        )
    elif result.rules:
        try:
            made = actions.import_rules(result, by=user)
        except actions.Invalid as exc:
            raise CommandError(f"Nothing was imported: {exc}") from None
        out.done(
            f"{count(len(made), 'rule')} imported for {user.email}, off: try each on past mail "
            "on Workflows, then turn it on."
        )
    else:
        out.say("Nothing to import.")
    if result.skipped:
        out.problem(f"{skipped} not imported: the lines above say why.")
        return 1
    return 0
