"""``crmail inbox rebuild``: recompute the sales inbox's conversations from the stored mail."""

from __future__ import annotations

import argparse

from crmail.config.commands.base import CommandError, Output, require_ready
from crmail.config.words import count


def register(commands: argparse._SubParsersAction) -> None:
    inbox = commands.add_parser(
        "inbox",
        help="the sales inbox's conversations",
        description="Manage the conversations the sales inbox reads (kept up to date as "
        "mail arrives, changes and is linked).",
    )
    sub = inbox.add_subparsers(dest="inbox_command", metavar="COMMAND")
    inbox.set_defaults(handler=lambda args, out: inbox.print_help() or 2, needs_django=False)
    rebuild = sub.add_parser(
        "rebuild",
        help="recompute the conversations",
        description="Recompute the sales inbox's conversations from where messages lie "
        "and what they are linked to: for all mailboxes, or one.",
    )
    rebuild.add_argument("--mailbox", type=int, metavar="ID", help="only this mailbox (its id)")
    rebuild.set_defaults(handler=run_rebuild, needs_django=True)


def run_rebuild(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.mailboxes import conversations
    from crmail.mailboxes.models import Mailbox

    if args.mailbox is not None and not Mailbox.objects.filter(pk=args.mailbox).exists():
        raise CommandError(
            f"--mailbox: there is no mailbox with id {args.mailbox}.",
            hint="`crmail mailbox list` shows them.",
        )
    done = conversations.rebuild(args.mailbox)
    where = f" in mailbox {args.mailbox}" if args.mailbox is not None else ""
    out.done(f"Rebuilt {count(done, 'conversation')}{where}.")
    return 0
