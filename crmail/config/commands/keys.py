"""``crmail keys``: make an encryption key, re-encrypt every secret with the newest, check.

The keys that protect mail passwords and OAuth tokens live outside the database
(``CRMAIL_ENCRYPTION_KEYS`` or the data dir's ``encryption_keys``). Rotating them:
``crmail keys generate``, put the new key first and keep the old ones after it,
``crmail keys rotate``, ``crmail keys check``, then remove the old keys.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from crmail.config.commands.base import CommandError, Output, require_ready

if TYPE_CHECKING:
    from crmail.config.crypto import KeyReport

ROTATION_STEPS = (
    "Put it first in CRMAIL_ENCRYPTION_KEYS (comma-separated) or as the first line of the "
    "data dir's encryption_keys file, keep the old keys after it, then run "
    "`crmail keys rotate`. Keep a copy somewhere safe: without it the secrets cannot be read."
)


def register(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser(
        "keys",
        help="encryption keys for stored passwords and tokens",
        description=(
            "Mail passwords and OAuth tokens are stored encrypted with keys kept outside the "
            "database (CRMAIL_ENCRYPTION_KEYS, newest first, or the data dir's "
            "encryption_keys file). Rotate: generate a key, put it first, keep the old ones "
            "after it, rotate, check, then remove the old keys."
        ),
    )
    keys_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND")
    keys.set_defaults(handler=lambda args, out: _usage(keys), needs_django=False)

    generate = keys_commands.add_parser(
        "generate",
        help="print a new encryption key",
        description="Print a new random encryption key on stdout; nothing is stored.",
    )
    generate.set_defaults(handler=run_generate, needs_django=False)

    rotate = keys_commands.add_parser(
        "rotate",
        help="re-encrypt every stored secret with the newest key",
        description=(
            "Re-encrypt every stored secret with the newest configured key, in batches. "
            "Secrets no configured key can read are listed and left alone, and the exit "
            "status is 1. Safe to run again."
        ),
    )
    rotate.add_argument(
        "--batch-size",
        type=_positive,
        default=500,
        metavar="N",
        help="secrets re-encrypted per transaction (default 500)",
    )
    rotate.set_defaults(handler=run_rotate, needs_django=True)

    check = keys_commands.add_parser(
        "check",
        help="check that every stored secret can be decrypted",
        description=(
            "Decrypt every stored secret with the configured keys; list those that cannot be "
            "read (exit status 1) and count those still on an older key."
        ),
    )
    check.set_defaults(handler=run_check, needs_django=True)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a whole number, 1 or more") from None
    if value < 1:
        raise argparse.ArgumentTypeError("a whole number, 1 or more")
    return value


def run_generate(args: argparse.Namespace, out: Output) -> int:
    from crmail.config import crypto

    out.out.print(crypto.generate_key(), soft_wrap=True)
    out.note(ROTATION_STEPS)
    return 0


def _load_keys() -> int:
    """The number of configured keys; a CommandError in words when they are unusable."""
    from crmail.config import crypto

    crypto.reset_cache()
    try:
        return len(crypto.load_keys())
    except crypto.EncryptionKeyError as exc:
        raise CommandError(str(exc)) from None


def _table(title: str, columns: list[tuple[str, dict[str, int]]]) -> Table:
    table = Table(title=title)
    table.add_column("Field")
    for name, _ in columns:
        table.add_column(name, justify="right")
    labels = sorted({label for _, counts in columns for label in counts})
    for label in labels:
        table.add_row(Text(label), *(str(counts.get(label, 0)) for _, counts in columns))
    return table


def _secrets(count: int, *, bare: bool = False) -> str:
    word = "secret" if count == 1 else "secrets"
    return word if bare else f"{count} {word}"


def _unreadable_error(report: KeyReport, what: str) -> CommandError:
    from crmail.config.crypto import key_source

    count = len(report.unreadable)
    return CommandError(
        f"{count} stored {_secrets(count, bare=True)} cannot be decrypted with any "
        f"configured key ({key_source()}){what}:",
        details=[str(u) for u in report.unreadable],
        hint=(
            "Add the key they were made with (after the newest), or ask the owners to enter "
            "those passwords again or sign in to their provider again."
        ),
    )


def run_rotate(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.config import crypto

    count = _load_keys()
    report = crypto.rotate_all(
        batch_size=args.batch_size,
        progress=lambda label, done: out.note(f"{label}: {done} checked"),
    )
    out.out.print(
        _table(
            "Re-encrypted secrets",
            [("Secrets", report.checked), ("Re-encrypted", report.rotated)],
        )
    )
    if report.unreadable:
        raise _unreadable_error(report, "; they were left as they are")
    out.done(
        f"Re-encrypted {report.total_rotated} of {report.total_checked} stored secrets with "
        f"the newest key; the others already used it."
    )
    if count > 1:
        out.note(
            "Run `crmail keys check`; when it passes, the older keys can be removed from "
            f"{crypto.key_source()}."
        )
    return 0


def run_check(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.config import crypto

    _load_keys()
    report = crypto.check_all()
    out.out.print(
        _table(
            "Stored secrets",
            [("Secrets", report.checked), ("On an older key", report.older_key)],
        )
    )
    if report.unreadable:
        raise _unreadable_error(report, "")
    if report.total_older_key:
        out.warn(
            f"{_secrets(report.total_older_key)} still on an older key: run "
            "`crmail keys rotate` before removing it."
        )
    out.ok(f"all {report.total_checked} stored secrets can be decrypted.")
    return 0
