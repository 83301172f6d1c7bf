"""``crmail storage``: the mail each user keeps against the organisation's quota (SPEC F11,
decision 058): show the figures, recount them from the blob store's index."""

from __future__ import annotations

import argparse

from crmail.config.commands.base import Output, require_ready
from crmail.config.words import count, size


def register(commands: argparse._SubParsersAction) -> None:
    storage = commands.add_parser(
        "storage",
        help="email storage against the organisation's quota",
        description="The organisation's quota is the lower of 100 GB and 5 GB per active "
        "user, plus the storage an administrator adds (CRMAIL_STORAGE_EXTRA_GB or the Email "
        "storage page). A message counts its size as received, attachments included, once "
        "for each user holding it; mail kept only at the provider counts nothing.",
    )
    sub = storage.add_subparsers(dest="storage_command", metavar="COMMAND")
    storage.set_defaults(handler=lambda args, out: storage.print_help() or 2, needs_django=False)
    show = sub.add_parser(
        "show",
        help="the organisation's usage, each user's, the largest mailboxes",
        description="The organisation's usage against its quota and how the quota is made "
        "up, the warnings raised, the messages whose body waits, each user's usage and the "
        "largest mailboxes.",
    )
    show.set_defaults(handler=run_show, needs_django=True)
    recount = sub.add_parser(
        "recount",
        help="recompute every figure from the blob store's index",
        description="Recompute each user's and each mailbox's figures from the blob store's "
        "index, the mail's locations and what users sent, and say which were off. crmail "
        "keeps running meanwhile.",
    )
    recount.set_defaults(handler=run_recount, needs_django=True)


def run_show(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from rich.table import Table
    from rich.text import Text

    from crmail.storage import queries

    overview = queries.organisation()
    q = overview.quota
    out.say(
        f"Organisation: {size(overview.used)} used of {size(q.total)} "
        f"({overview.percent:.1f} %), {size(overview.free)} free."
    )
    extra = "CRMAIL_STORAGE_EXTRA_GB" if q.extra_from_environment else "the Email storage page"
    out.say(
        f"Quota: the lower of {size(q.ceiling)} and {size(q.per_licence)} for each of "
        f"{count(q.licences, 'active user')} ({size(q.base)}), plus {q.extra_gb} GB added "
        f"({extra})."
    )
    if overview.level is not None:
        out.warn(f"Usage has reached {overview.level} % of the quota.")
    if overview.waiting:
        out.warn(
            f"{count(overview.waiting, 'message')} wait for their body: the storage was "
            "full when they arrived; they are fetched once there is room."
        )
    table = Table("User", "Mailboxes", "Messages", "Used", "Share", "Last 30 days")
    for column in table.columns[1:]:
        column.justify = "right"
    for row in queries.users():
        who = Text(row.user.email, style="" if row.user.is_active else "dim")
        table.add_row(
            who,
            str(row.mailboxes),
            f"{row.messages:,}",
            size(row.bytes),
            f"{row.share:.1f} %",
            ("+" if row.grown >= 0 else "-") + size(abs(row.grown)),
        )
    out.out.print(table)
    largest = queries.largest_mailboxes()
    if largest:
        boxes = Table("Largest mailboxes", "User", "Messages", "Used")
        for column in boxes.columns[2:]:
            column.justify = "right"
        for box in largest:
            boxes.add_row(
                box.mailbox.email, box.mailbox.owner.email, f"{box.messages:,}", size(box.bytes)
            )
        out.out.print(boxes)
    return 0


def run_recount(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.mailboxes.usage import recount
    from crmail.storage import thresholds

    done = recount()
    for line in done.corrected or []:
        out.note(f"Corrected {line}.")
    thresholds.check()
    off = len(done.corrected or [])
    out.done(
        f"Recounted the mail of {count(done.users, 'user')}: "
        + (f"{count(off, 'figure')} corrected." if off else "every figure was right.")
    )
    return 0
