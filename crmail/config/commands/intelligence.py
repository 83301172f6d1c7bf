"""``crmail intelligence rerun [--since DATE]``: compute email intelligence again after a
model change (the results missing or of another analysis version)."""

from __future__ import annotations

import argparse
from datetime import date

from crmail.config.commands.base import CommandError, Output, require_ready
from crmail.config.words import count


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a day written YYYY-MM-DD, not {value!r}") from None


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "intelligence",
        help="email intelligence (sentiment, intent, signatures, summaries)",
        description="Email intelligence, computed on this server as mail arrives.",
    )
    sub = parser.add_subparsers(dest="intelligence_command", metavar="COMMAND")
    parser.set_defaults(handler=lambda args, out: parser.print_help() or 2, needs_django=False)
    rerun = sub.add_parser(
        "rerun",
        help="compute the results again after a model change",
        description="Compute again the results that are missing or were computed by another "
        "version of the analysis: all mail, or mail dated on or after --since.",
    )
    rerun.add_argument("--since", type=_day, metavar="DATE", help="only mail from this day on")
    rerun.set_defaults(handler=run_rerun, needs_django=True)


def run_rerun(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.intelligence import pipeline, switch

    if not switch.enabled():
        raise CommandError(
            "Email intelligence is off for the organisation: nothing was computed.",
            hint="An administrator turns it on in Settings → Email intelligence.",
        )
    done = pipeline.rerun(args.since)
    since = f" from {args.since.isoformat()} on" if args.since else ""
    out.done(f"Computed {count(done, 'message')}{since} again.")
    return 0
