"""``crmail blobs``: the store that holds raw mail (decision 050): check it, move mail
stored by earlier releases into it, and remove what no message needs."""

from __future__ import annotations

import argparse

from crmail.config.commands.base import Output, require_ready
from crmail.config.words import count, size


def register(commands: argparse._SubParsersAction) -> None:
    blobs = commands.add_parser(
        "blobs",
        help="the store that holds raw mail",
        description="Raw mail is kept in packs in a blob store (files under the data dir, "
        "or S3-compatible storage with CRMAIL_BLOB_URL), indexed in the database.",
    )
    sub = blobs.add_subparsers(dest="blobs_command", metavar="COMMAND")
    blobs.set_defaults(handler=lambda args, out: blobs.print_help() or 2, needs_django=False)
    verify = sub.add_parser(
        "verify",
        help="check every stored message against its hash",
        description="Read every message's bytes from the blob store and check each one "
        "against the SHA-256 it is stored under; list every message whose bytes are "
        "missing or changed. Exit status 1 when there is one.",
    )
    verify.set_defaults(handler=run_verify, needs_django=True)
    migrate = sub.add_parser(
        "migrate",
        help="move mail stored by earlier releases into the blob store",
        description="Move the raw mail that releases before the blob store kept in the "
        "database into the blob store, a pack at a time. crmail keeps running meanwhile; "
        "run it again if it is stopped.",
    )
    migrate.add_argument("--batch", type=int, default=500, metavar="N", help="messages a pack")
    migrate.set_defaults(handler=run_migrate, needs_django=True)
    gc = sub.add_parser(
        "gc",
        help="remove the bytes no message needs",
        description="Remove from the blob store the bytes of messages that were deleted "
        "(packs still holding other messages are written again without them) and packs "
        "an interrupted sync left behind (older than an hour).",
    )
    gc.set_defaults(handler=run_gc, needs_django=True)
    usage = sub.add_parser(
        "usage",
        help="the mail each user and mailbox keeps in the store",
        description="Messages and bytes each user and each of their mailboxes keep in the "
        "blob store, from its index: bytes as received and as stored (compressed where it "
        "paid). A message is counted once per mailbox and once per user, however many "
        "folders hold it (a user's figure includes what they sent from crmail or received "
        "at their BCC Dropbox); mail that several users hold counts for each of them. "
        "`crmail storage show` compares them with the organisation's quota.",
    )
    usage.set_defaults(handler=run_usage, needs_django=True)


def run_verify(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.blobs import store
    from crmail.mail.store import unpack, without_bytes

    report = store.verify(unpack)
    missing, first = without_bytes()
    problems = list(report.problems)
    if missing:
        shown = ", ".join(str(pk) for pk in first)
        problems.append(f"{count(missing, 'message')} without stored bytes (ids {shown})")
    for problem in problems:
        out.problem(problem)
    where = store.backend().describe()
    if problems:
        return 1
    out.ok(f"{count(report.blobs, 'message')} in {where} match their hashes.")
    return 0


def run_migrate(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.mail.store import migrate_raw_rows

    moved = migrate_raw_rows(max(1, args.batch))
    out.done(f"Moved {count(moved, 'message')} into the blob store.")
    if moved:
        from crmail.mailboxes.usage import recount

        recount()  # storage counts what the store holds: these count from now on
        out.done("Recounted the storage each user's mail takes.")
    return 0


def run_gc(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.mail.store import collect_blobs

    done = collect_blobs()
    for problem in done.problems:
        out.problem(problem)
    out.done(
        f"Removed {count(done.packs, 'pack')} and wrote {count(done.rewritten, 'pack')} "
        "again without the bytes of deleted messages."
    )
    return 1 if done.problems else 0


def run_usage(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from rich.table import Table
    from rich.text import Text

    from crmail.mail.models import MessageRaw
    from crmail.mailboxes.models import Mailbox
    from crmail.mailboxes.usage import Usage, from_index

    by_user, by_mailbox = from_index()
    none = Usage(0, 0, 0)
    table = Table("User", "Mailbox", "Messages", "Received", "Stored")
    for column in table.columns[2:]:
        column.justify = "right"
    mailboxes = Mailbox.objects.select_related("owner").order_by("owner__email", "email", "pk")
    owner = None
    for mailbox in mailboxes:
        if mailbox.owner_id != owner:
            owner = mailbox.owner_id
            used = by_user.get(owner, none)
            table.add_row(
                Text(mailbox.owner.email, style="bold"),
                "all",
                f"{used.messages:,}",
                size(used.size),
                size(used.stored),
            )
        used = by_mailbox.get(mailbox.pk, none)
        table.add_row(
            "", Text(mailbox.email), f"{used.messages:,}", size(used.size), size(used.stored)
        )
    out.out.print(table)
    waiting = MessageRaw.objects.count()
    if waiting:
        out.note(
            f"{count(waiting, 'message')} kept by an earlier release in the database "
            "are not counted: `crmail blobs migrate` moves them into the store."
        )
    return 0
