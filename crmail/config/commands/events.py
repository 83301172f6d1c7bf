"""``crmail events``: how far each consumer of the event outbox is, and the events a
consumer failed on (retried by itself with backoff, then parked for an administrator)."""

from __future__ import annotations

import argparse

from rich.table import Table
from rich.text import Text

from crmail.config.commands.base import CommandError, Output, require_ready
from crmail.config.words import count


def register(commands: argparse._SubParsersAction) -> None:
    events = commands.add_parser(
        "events",
        help="the event outbox: consumers and failed events",
        description="Everything crmail records (mail received, linked, sent; records "
        "changed) goes through an outbox that linking, search, notifications, webhooks and "
        "workflows read. A consumer that fails on an event retries it with growing pauses "
        "for about five hours, then parks it here.",
    )
    sub = events.add_subparsers(dest="events_command", metavar="COMMAND")
    events.set_defaults(handler=lambda args, out: events.print_help() or 2, needs_django=False)
    status = sub.add_parser("status", help="how far each consumer is")
    status.set_defaults(handler=run_status, needs_django=True)
    failed = sub.add_parser(
        "failed",
        help="list the events consumers failed on",
        description="List parked events (and, with --all, those still being retried).",
    )
    failed.add_argument("--all", action="store_true", help="also those still being retried")
    failed.set_defaults(handler=run_failed, needs_django=True)
    retry = sub.add_parser(
        "retry",
        help="handle failed events again now",
        description="Handle failed events again now, each once; one that fails again is "
        "parked again with its new error.",
    )
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", type=int, default=[], metavar="ID", help="failure ids")
    which.add_argument("--all", action="store_true", help="every parked event")
    retry.set_defaults(handler=run_retry, needs_django=True)


def run_status(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.events import dispatch

    table = Table("Consumer", "Position", "Waiting", "Handled", "Retrying", "Parked")
    for row in dispatch.status():
        table.add_row(
            row.name,
            str(row.position),
            str(row.waiting),
            str(row.handled),
            str(row.retrying),
            Text(str(row.parked), style="bold red" if row.parked else ""),
        )
    out.out.print(table)
    return 0


def run_failed(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.config import dates
    from crmail.events import dispatch

    rows = dispatch.failures(parked=None if args.all else True)
    if not rows:
        out.say("No parked events." if not args.all else "No failed events.")
        return 0
    table = Table("ID", "Consumer", "Event", "Attempts", "Last failed", "State", "Error")
    for f in rows:
        state = "parked" if f.parked else f"retry at {dates.when(f.next_try_at)}"
        table.add_row(
            str(f.pk),
            f.consumer,
            Text(f"{f.event.kind} #{f.event.pk}"),
            str(f.attempts),
            dates.when(f.last_failed_at),
            state,
            Text(f.error.splitlines()[0] if f.error else ""),
        )
    out.out.print(table)
    return 0


def run_retry(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.events import dispatch
    from crmail.events.models import Failure

    if not args.all:
        known = set(Failure.objects.filter(pk__in=args.ids).values_list("pk", flat=True))
        missing = sorted(set(args.ids) - known)
        if missing:
            raise CommandError(
                f"No failed event with id {', '.join(map(str, missing))}.",
                hint="`crmail events failed --all` lists them.",
            )
    result = dispatch.retry(None if args.all else args.ids)
    if not result.handled and not result.failed:
        out.say("No parked events.")
        return 0
    out.done(f"Handled {count(result.handled, 'event')}.")
    if result.failed:
        out.problem(
            f"{count(result.failed, 'event')} failed again and "
            f"{'is' if result.failed == 1 else 'are'} parked: `crmail events failed` shows why."
        )
        return 1
    return 0
