"""``crmail search reindex``: rebuild the search index, for all mail or one mailbox."""

from __future__ import annotations

import argparse

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from crmail.config.commands.base import CommandError, Output, require_ready
from crmail.config.words import count


def register(commands: argparse._SubParsersAction) -> None:
    search = commands.add_parser(
        "search",
        help="the search index of mail",
        description="Manage the index that search reads (kept up to date as mail arrives).",
    )
    sub = search.add_subparsers(dest="search_command", metavar="COMMAND")
    search.set_defaults(handler=lambda args, out: search.print_help() or 2, needs_django=False)
    reindex = sub.add_parser(
        "reindex",
        help="rebuild the search index",
        description="Rebuild the search index from the stored mail: all of it, or the "
        "messages of one mailbox. Searches keep working while it runs.",
    )
    reindex.add_argument(
        "--mailbox", type=int, metavar="ID", help="only this mailbox's messages (its id)"
    )
    reindex.set_defaults(handler=run_reindex, needs_django=True)


def run_reindex(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.mailboxes.models import Mailbox
    from crmail.search.index import reindex

    if args.mailbox is not None and not Mailbox.objects.filter(pk=args.mailbox).exists():
        raise CommandError(
            f"--mailbox: there is no mailbox with id {args.mailbox}.",
            hint="`crmail mailbox list` shows them.",
        )
    columns = (
        TextColumn("Indexing"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed} of {task.total} messages"),
        TimeElapsedColumn(),
    )
    # The bar is drawn only on a terminal: piped or logged output stays clean.
    bar = Progress(*columns, console=out.err, transient=True, disable=not out.err.is_terminal)
    with bar:
        task = bar.add_task("mail", total=None)
        done = reindex(args.mailbox, lambda n, total: bar.update(task, completed=n, total=total))
    where = f" of mailbox {args.mailbox}" if args.mailbox is not None else ""
    out.done(f"Indexed {count(done, 'message')}{where}.")
    return 0
