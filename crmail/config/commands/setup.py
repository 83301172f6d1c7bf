"""``crmail init``: the data dir, the database, the first administrator. Safe to run again."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from crmail.config import env
from crmail.config.commands.base import (
    CommandError,
    Output,
    config_errors,
    database_problem,
    describe_database,
    pending_migrations,
    setup_django,
)

ADMIN_NAME = "Administrator"
PASSWORD_ATTEMPTS = 3
GENERATED_NAME = "initial-admin-password"  # the file the generated password goes to


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "init",
        help="set up the data dir, the database and the first administrator",
        description=(
            "Create the data dir (CRMAIL_DATA_DIR, default ./data), bring the database up to "
            "date and add the first administrator from CRMAIL_ADMIN_EMAIL and "
            "CRMAIL_ADMIN_PASSWORD (asked for when run in a terminal; otherwise generated "
            "into DATA_DIR/initial-admin-password, and the output says so). Running it again "
            "only applies new migrations."
        ),
    )
    parser.set_defaults(handler=run_init, needs_django=False)


def run_init(args: argparse.Namespace, out: Output) -> int:
    data_dir = env.data_dir()
    existed = data_dir.is_dir()
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"Cannot create the data dir {data_dir}: {exc.strerror}.") from None
    if not os.access(data_dir, os.W_OK):
        raise CommandError(f"The data dir {data_dir} is not writable by this user.")
    try:
        tightened = env.make_private(data_dir)
        database = env.database_settings(data_dir)
        if database["ENGINE"].endswith("sqlite3") and Path(database["NAME"]).parent.is_dir():
            env.create_private_file(database["NAME"])
    except env.ConfigError:
        tightened = []  # said in words below, with the other configuration problems
    except OSError as exc:
        raise CommandError(f"Cannot keep the data dir private: {exc}.") from None
    # The data dir must exist before the settings load: they keep the queue file there.
    setup_django()
    errors = config_errors()
    if errors:
        raise CommandError(
            "The configuration has problems:", details=errors, hint="Fix them and run it again."
        )
    out.done(f"Data dir {data_dir} {'is in place' if existed else 'created'}.")
    if tightened:
        out.done(
            f"Data dir made private: {len(tightened)} of its files or folders could be read "
            "by other users of this machine."
        )
    migrate(out)
    ensure_admin(out)
    return 0


def migrate(out: Output) -> None:
    from django.core.management import call_command
    from django.db import DatabaseError

    try:
        pending = pending_migrations()
        if pending:
            with out.err.status(f"Applying {len(pending)} database migrations…"):
                call_command("migrate", interactive=False, verbosity=0)
    except DatabaseError as exc:
        raise database_problem(exc) from None
    if pending:
        out.done(f"Database ready ({describe_database()}): applied {len(pending)} migrations.")
    else:
        out.done(f"Database is up to date ({describe_database()}).")


def password_file() -> Path:
    """Where ``crmail init`` writes the first administrator's generated password."""
    return env.data_dir() / GENERATED_NAME


def generated_password() -> str:
    """The first administrator's password: the one a previous run wrote, or a new one
    written to ``password_file()`` (readable by this user only)."""
    path = password_file()
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def ensure_admin(out: Output) -> None:
    from crmail.people import actions

    existing = actions.first_admin()
    if existing is not None:
        out.done(f"Administrator {existing.email} exists; nothing to add.")
        if password_file().is_file():
            out.note(
                f"The password generated for the first administrator is in {password_file()}: "
                "delete that file once it is changed (Account page)."
            )
        wanted = os.environ.get("CRMAIL_ADMIN_EMAIL", "").strip().lower()
        if wanted and wanted != existing.email:
            out.note(
                f"CRMAIL_ADMIN_EMAIL ({wanted}) was not used; add more users with "
                "`crmail user add`."
            )
        return
    interactive = sys.stdin.isatty()
    email = os.environ.get("CRMAIL_ADMIN_EMAIL", "").strip()
    password = os.environ.get("CRMAIL_ADMIN_PASSWORD", "")
    if not email:
        if not interactive:
            raise CommandError(
                "No administrator exists yet, and CRMAIL_ADMIN_EMAIL is not set.",
                hint="Set CRMAIL_ADMIN_EMAIL and CRMAIL_ADMIN_PASSWORD and run `crmail init` "
                "again, or run it in a terminal to be asked.",
            )
        email = out.err.input("Email address of the first administrator: ").strip()
    generated = False
    if not password:
        if interactive:
            password = ask_password(out, email)
        else:
            password, generated = generated_password(), True
    try:
        user = actions.create_user(email, name=ADMIN_NAME, admin=True, password=password)
    except actions.Invalid as exc:
        names = {"email": "CRMAIL_ADMIN_EMAIL", "password": "CRMAIL_ADMIN_PASSWORD"}
        raise CommandError(
            "The first administrator cannot be added:",
            details=[f"{names.get(e['field'], e['field'])}: {e['message']}" for e in exc.errors],
        ) from None
    if generated:
        out.done(
            f"Administrator {user.email} added (profile {user.profile}, role {user.role}); "
            f"sign in with that address and the password in {password_file()} (generated: "
            "change it on your Account page, then delete the file)."
        )
        return
    out.done(
        f"Administrator {user.email} added (profile {user.profile}, role {user.role}); "
        "sign in with that address and the password you gave."
    )


def ask_password(out: Output, email: str) -> str:
    from crmail.people.actions import password_problems
    from crmail.people.models import User

    for _ in range(PASSWORD_ATTEMPTS):
        password = out.err.input(f"Password for {email}: ", password=True)
        problems = password_problems(password, User(email=email.lower(), name=ADMIN_NAME))
        if problems:
            for problem in problems:
                out.warn(problem)
            continue
        if out.err.input("The same password again: ", password=True) != password:
            out.warn("The two passwords differ.")
            continue
        return password
    raise CommandError("No acceptable password was given.")
