"""What every ``crmail`` subcommand shares: output, errors in words, Django start-up."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from crmail.text import repaired, text_problem

if TYPE_CHECKING:
    from django.db.migrations import Migration

PIPE_WIDTH = 200


@dataclass
class CommandError(Exception):
    """A problem the user can fix: said in words, with details and a hint, exit status 1."""

    message: str
    details: list[str] = field(default_factory=list)
    hint: str = ""

    def __str__(self) -> str:
        return self.message


class Output:
    """Results on stdout, everything else (notes, warnings, errors, progress) on stderr.

    Values from users and files go in as ``Text``, never as markup, so a ``[`` in an
    address or a file name prints as it is; bytes of a file name that are not UTF-8 print
    as U+FFFD.
    """

    def __init__(self) -> None:
        # Piped or captured, tables take the width they need rather than rich's 80 columns.
        width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
        self.out = Console(soft_wrap=True, highlight=False, width=width)
        self.err = Console(stderr=True, soft_wrap=True, highlight=False)

    def ok(self, message: str) -> None:
        self.out.print(Text.assemble(("All good: ", "bold green"), repaired(message)))

    def done(self, message: str) -> None:
        self.out.print(Text(repaired(message), style="green"))

    def say(self, message: str) -> None:
        self.out.print(Text(repaired(message)))

    def problem(self, message: str) -> None:
        self.out.print(Text.assemble(("Problem: ", "bold red"), repaired(message)))

    def note(self, message: str) -> None:
        self.err.print(Text(repaired(message), style="dim"))

    def warn(self, message: str) -> None:
        self.err.print(Text.assemble(("Warning: ", "bold yellow"), repaired(message)))

    def error(self, message: str, details: Iterable[str] = (), hint: str = "") -> None:
        self.err.print(Text.assemble(("Error: ", "bold red"), repaired(message)))
        for line in details:
            self.err.print(Text(f"  - {repaired(line)}"))
        if hint:
            self.err.print(Text(repaired(hint), style="yellow"))


def secret_from_env(var: str, option: str, hint: str = "") -> str:
    """A password named by ``--…-env VAR``: set, not empty, and text (UTF-8)."""
    value = os.environ.get(var, "")
    if not value:
        raise CommandError(
            f"{option}: the environment variable {var} is not set or is empty.", hint=hint
        )
    if text_problem(value):
        raise CommandError(f"{option}: the environment variable {var} is not valid UTF-8 text.")
    return value


def setup_django() -> None:
    """Load crmail's settings and apps (the settings read the environment once, here)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "crmail.config.settings"
    import django

    django.setup()


def config_errors() -> list[str]:
    from django.conf import settings

    return list(settings.CRMAIL_CONFIG_ERRORS)


def describe_database() -> str:
    """Where the database is, in words, without its password."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"SQLite at {db['NAME']}"
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    user = f" as {db['USER']}" if db.get("USER") else ""
    return f"PostgreSQL database {db['NAME']} on {host}{port}{user}"


def error_words(exc: BaseException) -> str:
    """An exception's message on one line (drivers spread theirs over several)."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or (
        type(exc).__name__
    )


def database_problem(exc: BaseException) -> CommandError:
    return CommandError(
        f"Cannot use the database ({describe_database()}): {error_words(exc)}",
        hint="Run `crmail check` to see what is wrong.",
    )


def pending_migrations() -> list[tuple[Migration, bool]]:
    """The migrations not yet applied to the database (connects to it)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    if _every_migration_file_applied():
        return []
    executor = MigrationExecutor(connection)
    return executor.migration_plan(executor.loader.graph.leaf_nodes())


def _every_migration_file_applied() -> bool:
    """True when the database records every migration file of every app as applied.

    Every command asks; reading the names of the files is enough to say "nothing to do",
    where Django's plan imports all the migrations (a tenth of a second). Any file not
    recorded (a new one, a squashed one) leaves the answer to the full plan.
    """
    import pkgutil
    from importlib.util import find_spec

    from django.apps import apps
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    applied = MigrationRecorder(connection).applied_migrations()
    if not applied:
        return False
    for app in apps.get_app_configs():
        module, _explicit = MigrationLoader.migrations_module(app.label)
        spec = find_spec(module) if module else None
        if spec is None or not spec.submodule_search_locations:
            continue
        for _finder, name, is_package in pkgutil.iter_modules(spec.submodule_search_locations):
            if not is_package and name[0] not in "_~" and (app.label, name) not in applied:
                return False
    return True


def require_ready() -> None:
    """Refuse to go on while the configuration has problems or the database is not set up."""
    from django.db import DatabaseError

    errors = config_errors()
    if errors:
        raise CommandError(
            "The configuration has problems:",
            details=errors,
            hint="Fix them, then run `crmail check`.",
        )
    try:
        pending = pending_migrations()
    except DatabaseError as exc:
        raise database_problem(exc) from None
    if pending:
        raise CommandError(
            f"The database is not set up yet ({len(pending)} migrations to apply).",
            hint="Run `crmail init` first.",
        )


def field_errors(errors: list[dict[str, str]], names: dict[str, str]) -> list[str]:
    """``{"field", "message"}`` items as lines, each field named as the user typed it."""
    lines = []
    for error in errors:
        name = error["field"]
        prefix = "" if name == "__all__" else f"{names.get(name, name)}: "
        lines.append(prefix + error["message"])
    return lines


def any_user(email: str, option: str) -> Any:
    """The user with ``email``, active or not, or a CommandError naming ``option``."""
    from crmail.people.actions import find_user

    user = find_user(email)
    if user is None:
        raise CommandError(
            f"{option}: there is no user with the email {email!r}.",
            hint="`crmail user list` shows the users.",
        )
    return user


def active_user(email: str, option: str) -> Any:
    """The active user with ``email``, or a CommandError naming ``option``."""
    user = any_user(email, option)
    if not user.is_active:
        raise CommandError(f"{option}: {user.email} is deactivated.")
    return user
