"""``crmail import``: records from a CSV file, with a progress bar and the bad rows listed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from crmail.config.commands.base import CommandError, Output, active_user, require_ready

if TYPE_CHECKING:
    from crmail.crm.importer import ImportReport

MODULES = ("contacts", "accounts", "leads", "deals")
SHOWN_ERRORS = 100


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "import",
        help="import contacts, accounts, leads or deals from a CSV file",
        description=(
            "Import records from a CSV file (comma, semicolon or tab separated; UTF-8, or "
            "Windows-1252 with a warning). The first line names the columns: First Name, "
            "Last Name, Email, Other Emails, Account, Company, Title, Phone, Mobile, Website, "
            "Domain, Industry, Deal Name, Pipeline, Stage, Amount, Closing Date, Contact "
            "Email, Owner, Description, Status, Source. Each row is checked like a record "
            "typed into crmail; bad rows are listed with their line numbers."
        ),
    )
    parser.add_argument("module", choices=MODULES, help="what the rows are")
    parser.add_argument("file", metavar="FILE.csv", type=Path, help="the CSV file")
    parser.add_argument(
        "--owner",
        metavar="EMAIL",
        help="import as this user, who owns rows without an Owner column "
        "(default: the first administrator)",
    )
    parser.add_argument(
        "--atomic", action="store_true", help="all or nothing: keep no row if any row fails"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="check every row and report, but keep nothing"
    )
    parser.set_defaults(handler=run_import, needs_django=True)


def run_import(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.crm.actions import NotAllowed
    from crmail.crm.importer import ImportFailed, import_csv
    from crmail.people.actions import first_admin

    path: Path = args.file
    if not path.is_file():
        raise CommandError(f"There is no file {path}.")
    if args.owner:
        acting = owner = active_user(args.owner, "--owner")
    else:
        acting, owner = first_admin(), None
        if acting is None:
            raise CommandError(
                "No administrator exists yet to import as.",
                hint="Run `crmail init`, or name the importing user with --owner.",
            )
    columns = (
        TextColumn("Importing {task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeElapsedColumn(),
    )
    # The bar is drawn only on a terminal: piped or logged output stays clean.
    bar = Progress(*columns, console=out.err, transient=True, disable=not out.err.is_terminal)
    try:
        with bar:
            task = bar.add_task(args.module, total=path.stat().st_size or None, rows=0)
            report = import_csv(
                args.module,
                path,
                acting,
                owner,
                atomic=args.atomic,
                dry_run=args.dry_run,
                progress=lambda p: bar.update(task, completed=p.bytes_read, rows=p.rows),
            )
    except (ImportFailed, NotAllowed) as exc:
        raise CommandError(f"{path}: {exc}") from None
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror or exc}.") from None

    for warning in report.warnings:
        out.warn(warning)
    if report.errors:
        table = Table(title=f"Rows not imported from {path.name}")
        table.add_column("Line", justify="right")
        table.add_column("Problem")
        for line, reason in report.errors[:SHOWN_ERRORS]:
            table.add_row(str(line), Text(reason))
        out.out.print(table)
        if report.failed > SHOWN_ERRORS:
            out.say(f"… and {report.failed - SHOWN_ERRORS} more rows with problems.")
    out.out.print(summary(report))
    return 1 if report.errors else 0


def summary(report: ImportReport) -> Text:
    module, rows, failed = report.module, report.rows, report.failed
    plural = "" if rows == 1 else "s"
    if report.dry_run:
        return Text(
            f"Dry run: {report.valid} of {rows} row{plural} would be imported as {module}, "
            f"{failed} would fail. Nothing was saved.",
            style="yellow" if failed else "green",
        )
    if report.rolled_back:
        return Text(
            f"Nothing was imported: {failed} of {rows} row{plural} failed, and --atomic keeps "
            "all or nothing. Fix the rows above and import the file again.",
            style="red",
        )
    if failed:
        return Text(
            f"Imported {report.imported} {module} from {rows} row{plural}; {failed} failed. "
            "The good rows are kept: import only the fixed rows again, or use --atomic.",
            style="yellow",
        )
    return Text(f"Imported {report.imported} {module} from {rows} row{plural}.", style="green")
