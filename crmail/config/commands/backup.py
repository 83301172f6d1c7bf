"""``crmail backup``: a user's mail as an mbox file (SPEC F12), e.g. before they leave."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from rich.text import Text

from crmail.config.commands.base import CommandError, Output, require_ready
from crmail.config.words import count


def register(commands: argparse._SubParsersAction) -> None:
    backup = commands.add_parser(
        "backup",
        help="write a user's mail to an mbox file",
        description="Write every message in the user's mailboxes (any folder, active "
        "mailbox or not) and every message they sent from crmail to one mbox file "
        "(mboxrd, RFC 4155), oldest first, each message once. Mail programs such as "
        "Thunderbird or mutt open it. A deactivated user's synced mail no longer shows on "
        "records until a backup is taken; once the whole file is written, it shows again, "
        "shared as their setting says.",
    )
    backup.add_argument("user", metavar="EMAIL", help="the user whose mail to back up")
    backup.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        type=Path,
        help="the file to write (default: standard output)",
    )
    backup.set_defaults(handler=run_backup, needs_django=True)


def run_backup(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.mail import mbox
    from crmail.mailboxes.queries import user_mail
    from crmail.people.actions import find_user
    from crmail.sharing.actions import take_backup

    user = find_user(args.user)
    if user is None:
        raise CommandError(
            f"EMAIL: there is no user with the email {args.user!r}.",
            hint="`crmail user list` shows the users.",
        )
    if args.output is None and sys.stdout.isatty():
        raise CommandError(
            "An mbox file is not for the terminal.",
            hint="Give -o FILE, or redirect the output: crmail backup EMAIL > FILE",
        )
    total = user_mail(user).count()
    done = mbox.Progress(messages=0, bytes=0)
    # A progress line on stderr while it runs (on a terminal; it goes away at the end).
    with out.err.status(Text(f"{user.email}: 0 of {total} messages")) as status:

        def progress(now: mbox.Progress) -> None:
            nonlocal done
            done = now
            line = f"{user.email}: {now.messages} of {total} messages, {megabytes(now.bytes)}"
            status.update(Text(line))

        chunks = take_backup(None, user, progress)
        if args.output is None:
            written = _write(chunks, sys.stdout.buffer)
            where = "standard output"
        else:
            written = _write_file(chunks, args.output)
            where = str(args.output)
    out.note(
        f"Backed up {count(done.messages, 'message')} of {user.email} ({megabytes(written)}) "
        f"to {where}."
    )
    if done.without_body:
        out.note(
            f"{count(done.without_body, 'message')} went in without the body (its header "
            "section only, marked X-Crmail-Body-Waiting): it arrived while the storage was "
            "full, and its body is on the mail server only."
        )
    return 0


def _write(chunks: Iterable[bytes], stream: BinaryIO) -> int:
    written = 0
    for chunk in chunks:
        stream.write(chunk)
        written += len(chunk)
    stream.flush()
    return written


def _write_file(chunks: Iterable[bytes], path: Path) -> int:
    """Into ``path`` through a temporary file beside it: a backup that stopped half-way
    never passes for a whole one."""
    part = path.with_name(path.name + ".part")
    try:
        # 0600: it is someone's mail.
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as stream:
            written = _write(chunks, stream)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return written


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
