"""The ``crmail`` command: set up, serve, run workers, manage people, import, check.

Each subcommand lives in ``crmail.config.commands``; this module parses the command line,
starts Django when the subcommand needs it, and turns the problems a user can fix into a
message in words and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence

from crmail import __version__
from crmail.config import env
from crmail.config.commands import (
    backup,
    blobs,
    check,
    domain,
    dropbox,
    events,
    groups,
    imports,
    inbox,
    intelligence,
    keys,
    mailbox,
    people,
    search,
    serve,
    setup,
    sharing,
    storage,
    workflows,
)
from crmail.config.commands.base import CommandError, Output, database_problem, setup_django
from crmail.text import text_problem

EPILOG = """\
Settings come from the environment: CRMAIL_DATA_DIR (default ./data), CRMAIL_DATABASE_URL,
CRMAIL_QUEUE_URL, CRMAIL_SECRET_KEY. `crmail COMMAND --help` explains each command.

First run:  crmail init && crmail serve
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crmail",
        description="crmail, a self-hosted CRM whose heart is email.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"crmail {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in (
        setup,
        serve,
        people,
        groups,
        imports,
        mailbox,
        sharing,
        search,
        intelligence,
        inbox,
        events,
        workflows,
        backup,
        blobs,
        storage,
        dropbox,
        domain,
        keys,
        check,
    ):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``crmail`` with ``argv`` (default: the command line); returns the exit status."""
    # Before anything is written (the data dir holds mail); as it was afterwards, for
    # callers in the same process.
    umask = env.keep_files_private()
    # Started from the command line (not called by other code), the start-up's objects are
    # kept out of the garbage collector's way: importing crmail and Django makes several
    # hundred thousand objects and almost no garbage, and collecting while they are made
    # walked them again and again (a third of the start-up's CPU time). They are frozen
    # once Django is set up (never walked again, the command's own objects are).
    whole_process = argv is None
    if whole_process:
        gc.disable()
    try:
        return _run(argv, freeze_startup=whole_process)
    finally:
        os.umask(umask)
        if whole_process:
            gc.enable()


def _run(argv: Sequence[str] | None, *, freeze_startup: bool = False) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    out = Output()
    bad = argument_not_text(parser, args)
    if bad:
        out.error(f"{bad} is not valid UTF-8 text.")
        return 2
    try:
        if args.needs_django:
            setup_django()
        if freeze_startup:
            gc.freeze()
            gc.enable()
        return int(args.handler(args, out) or 0)
    except CommandError as exc:
        out.error(exc.message, exc.details, exc.hint)
        return 1
    except KeyboardInterrupt:
        out.err.print("Interrupted.")
        return 130
    except Exception as exc:
        problem = known_problem(exc)
        if problem is None:
            raise
        out.error(problem.message, problem.details, problem.hint)
        return 1


def argument_not_text(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The first argument that is not text, as ``--name`` or ``EMAIL``; None when all are.

    Bytes that are not UTF-8 reach Python as lone surrogates, which nothing can store or
    print. Paths (``type=Path``) are bytes to the system and pass as they are.
    """
    for action in _actions(parser, args):
        value = getattr(args, action.dest, None)
        if isinstance(value, str | list) and text_problem(value):
            if action.option_strings:
                return max(action.option_strings, key=len)
            return str(action.metavar or action.dest)
    return None


def _actions(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[argparse.Action]:
    """The actions of ``parser`` and of the subcommands chosen in ``args``."""
    found: list[argparse.Action] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            if chosen is not None:
                found.extend(_actions(chosen, args))
        else:
            found.append(action)
    return found


def known_problem(exc: Exception) -> CommandError | None:
    """A database or file-system failure a user can fix, said in words; None for bugs."""
    if "django.db" in sys.modules:
        from django.db import DatabaseError

        if isinstance(exc, DatabaseError):
            return database_problem(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return CommandError(f"{exc.strerror}{where}.")
    return None


if __name__ == "__main__":
    sys.exit(main())
