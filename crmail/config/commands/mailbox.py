"""``crmail mailbox``: connect, sync, watch the status of and verify users' mailboxes."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from crmail.config.commands.base import (
    CommandError,
    Output,
    active_user,
    field_errors,
    require_ready,
    secret_from_env,
)
from crmail.config.words import count


def register(commands: argparse._SubParsersAction) -> None:
    mailbox = commands.add_parser(
        "mailbox",
        help="connect, sync and verify mailboxes",
        description="Connect users' mailboxes, sync them, and compare them with the server.",
    )
    sub = mailbox.add_subparsers(dest="mailbox_command", metavar="COMMAND")
    mailbox.set_defaults(handler=lambda args, out: mailbox.print_help() or 2, needs_django=False)

    add = sub.add_parser(
        "add",
        help="connect a mailbox (tested before it is saved)",
        description="Connect a mailbox for a user and make it the one that "
        "fetches. The configuration is tested first (login, folders, SMTP "
        "login); prints the new mailbox's id.",
    )
    add.add_argument("--user", required=True, metavar="EMAIL", help="the mailbox's owner")
    add.add_argument(
        "--protocol",
        required=True,
        choices=["imap", "pop3", "gmail", "graph"],
        help="imap or pop3 (with --host, --port, --security, --login, --password-env), or "
        "gmail (the Gmail API) or graph (Outlook through Microsoft Graph) with "
        "--oauth-refresh-token-env",
    )
    add.add_argument("--email", help="the mailbox's address (default: the user's)")
    add.add_argument("--host", help="imap, pop3: the incoming server")
    add.add_argument("--port", type=int, help="imap, pop3: its port")
    add.add_argument("--security", choices=["tls", "starttls", "none"], help="imap, pop3")
    add.add_argument("--login", help="imap, pop3: the login name")
    add.add_argument(
        "--password-env",
        metavar="VAR",
        help="imap, pop3: take the password from this environment variable",
    )
    add.add_argument(
        "--oauth-refresh-token-env",
        metavar="VAR",
        help="gmail, graph: take the OAuth refresh token (obtained elsewhere for this "
        "server's OAuth client) from this environment variable; it is checked with one "
        "refresh at Google or Microsoft",
    )
    add.add_argument(
        "--keep-copy",
        action="store_true",
        help="gmail, graph: keep a copy of the mail in crmail (search, reports); without it "
        "nothing of the mail is stored and records ask the provider live",
    )
    add.add_argument("--smtp-host")
    add.add_argument("--smtp-port", type=int)
    add.add_argument("--smtp-security", choices=["tls", "starttls", "none"], default="tls")
    add.add_argument("--smtp-login", help="when the outgoing login differs")
    add.add_argument("--smtp-password-env", metavar="VAR")
    add.add_argument(
        "--smtp-no-login",
        action="store_true",
        help="the outgoing server is a relay that takes mail without a login",
    )
    add.add_argument("--display-name", default="", help="the name on mail sent from it")
    add.add_argument("--folders", help="comma-separated folders to sync (default: all)")
    add.add_argument(
        "--since",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="import only mail that arrived on or after this day",
    )
    add.add_argument(
        "--delete-from-server",
        action="store_true",
        help=(
            "POP3: delete messages on the server once crmail has stored them whole "
            "(their size as the server lists it)"
        ),
    )
    add.add_argument(
        "--allow-self-signed",
        action="store_true",
        help="accept a self-signed certificate (self-hosted servers)",
    )
    add.add_argument(
        "--sharing",
        choices=["private", "public", "custom"],
        help="who sees the mail synced from it: private (the owner only), public (everyone "
        "who can access the record) or custom (per record); default: the organisation's "
        "default for a first mailbox (`crmail sharing default`), the owner's setting after",
    )
    add.add_argument("--no-test", action="store_true", help="save without testing")
    add.set_defaults(handler=run_add, needs_django=True)

    sync = sub.add_parser(
        "sync",
        help="sync mailboxes now, in the foreground (or queue them)",
        description="Sync each mailbox given to completion with a progress bar, one after "
        "the other; with --background, queue them for the job workers instead.",
    )
    sync.add_argument("ids", type=int, nargs="+", metavar="ID")
    sync.add_argument(
        "--background",
        action="store_true",
        help="queue the syncs for the job workers and return at once",
    )
    sync.set_defaults(handler=run_sync, needs_django=True)

    status = sub.add_parser("status", help="a mailbox's sync status and counts")
    status.add_argument("id", type=int)
    status.add_argument("--json", action="store_true", help="as JSON, for scripts")
    status.set_defaults(handler=run_status, needs_django=True)

    verify = sub.add_parser(
        "verify",
        help="compare what the servers hold with what crmail stored",
        description="Per mailbox and folder: messages on the server, stored, missing and "
        "extra. Exits 0 only when every mailbox given agrees with its server.",
    )
    verify.add_argument("ids", type=int, nargs="+", metavar="ID")
    verify.set_defaults(handler=run_verify, needs_django=True)

    deactivate = sub.add_parser(
        "deactivate",
        help="stop syncing a mailbox, keeping or discarding its mail",
        description="Stop syncing a mailbox. Say what becomes of the mail it synced: "
        "--keep-mail leaves it on the records; --discard-mail deletes crmail's copies (mail "
        "another mailbox holds, and mail sent from crmail, stays).",
    )
    deactivate.add_argument("id", type=int)
    choice = deactivate.add_mutually_exclusive_group(required=True)
    choice.add_argument("--keep-mail", action="store_true", help="keep the synced mail")
    choice.add_argument("--discard-mail", action="store_true", help="delete the synced mail")
    deactivate.set_defaults(handler=run_deactivate, needs_django=True)

    lock = sub.add_parser(
        "lock",
        help="lock a user's mail configuration (or --unlock it)",
        description="A locked configuration can be changed only by administrators.",
    )
    lock.add_argument("user", metavar="EMAIL")
    lock.add_argument("--unlock", action="store_true")
    lock.set_defaults(handler=run_lock, needs_django=True)

    listing = sub.add_parser("list", help="list mailboxes")
    listing.add_argument("--user", metavar="EMAIL")
    listing.set_defaults(handler=run_list, needs_django=True)


def _mailbox(mailbox_id: int):  # type: ignore[no-untyped-def]
    from crmail.mailboxes.models import Mailbox

    mailbox = Mailbox.objects.select_related("owner").filter(pk=mailbox_id).first()
    if mailbox is None:
        raise CommandError(
            f"There is no mailbox with id {mailbox_id}.", hint="`crmail mailbox list` shows them."
        )
    return mailbox


def run_add(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.config.commands.sharing import describe as describe_sharing
    from crmail.people.actions import Invalid, NotAllowed, first_admin
    from crmail.sharing.actions import connect_mailbox
    from crmail.sharing.queries import connect_choice

    owner = active_user(args.user, "--user")
    if args.protocol in API_PROTOCOLS:
        fields = _api_fields(args, owner)
    else:
        fields = _server_fields(args, owner)
    actor = first_admin() or owner
    sharing = args.sharing or connect_choice(owner, None).mode
    try:
        mailbox = connect_mailbox(actor, owner, fields, test=not args.no_test, sharing=sharing)
    except Invalid as exc:
        raise CommandError(
            "The mailbox was not saved:",
            field_errors(
                exc.errors, {"incoming": "incoming server", "outgoing": "outgoing server"}
            ),
        ) from None
    except NotAllowed as exc:
        raise CommandError(str(exc)) from None
    if args.protocol in API_PROTOCOLS:
        out.note(
            f"{mailbox.get_protocol_display()}: "
            + (
                "a copy of the mail is kept in crmail for search and reports."
                if mailbox.keeps_copy
                else "nothing of the mail is stored in crmail; records ask the provider live."
            )
        )
    elif not args.smtp_host:
        out.note("No outgoing (SMTP) server given: this mailbox cannot send mail from crmail.")
    out.note(f"Mail sharing of {owner.email}: {describe_sharing(owner)}.")
    out.say(str(mailbox.pk))
    return 0


API_PROTOCOLS = ("gmail", "graph")
SERVER_OPTIONS = ("host", "port", "security", "login", "password_env")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _api_fields(args: argparse.Namespace, owner: Any) -> dict[str, Any]:
    """A Gmail API or Graph mailbox from a refresh token obtained elsewhere, proven by one
    refresh (which also gives its first access token)."""
    from crmail.mailboxes.actions import api_mailbox_fields
    from crmail.mailboxes.drivers.base import DriverError

    given = [_option(n) for n in (*SERVER_OPTIONS, "smtp_host") if getattr(args, n)]
    if given:
        raise CommandError(
            f"--protocol {args.protocol} signs in with OAuth and needs no server settings: "
            f"leave out {', '.join(given)}."
        )
    if not args.oauth_refresh_token_env:
        raise CommandError(
            f"--protocol {args.protocol} needs --oauth-refresh-token-env VAR: the name of an "
            "environment variable holding the OAuth refresh token (never the token itself)."
        )
    refresh_token = secret_from_env(args.oauth_refresh_token_env, "--oauth-refresh-token-env")
    try:
        fields = api_mailbox_fields(args.protocol, refresh_token, keeps_copy=args.keep_copy)
    except DriverError as exc:
        raise CommandError(f"The refresh token was not accepted: {exc}") from None
    return {
        **fields,
        "email": (args.email or owner.email).lower(),
        "import_folders": [f.strip() for f in (args.folders or "").split(",") if f.strip()],
        "import_since": args.since,
        "display_name": args.display_name,
    }


def _server_fields(args: argparse.Namespace, owner: Any) -> dict[str, Any]:
    """An IMAP or POP3 mailbox with a password."""
    missing = [_option(n) for n in SERVER_OPTIONS if getattr(args, n) in (None, "")]
    if missing:
        raise CommandError(f"--protocol {args.protocol} needs {', '.join(missing)}.")
    for name in ("oauth_refresh_token_env", "keep_copy"):
        if getattr(args, name):
            raise CommandError(
                f"{_option(name)} is for --protocol gmail or graph; {args.protocol} mailboxes "
                "sign in with a password and always keep a copy."
            )
    fields = {
        "email": (args.email or owner.email).lower(),
        "protocol": args.protocol,
        "host": args.host,
        "port": args.port,
        "security": args.security,
        "login": args.login,
        "secret": secret_from_env(args.password_env, "--password-env"),
        "allow_self_signed": args.allow_self_signed,
        "import_folders": [f.strip() for f in (args.folders or "").split(",") if f.strip()],
        "import_since": args.since,
        "keep_on_server": not args.delete_from_server,
        "display_name": args.display_name,
    }
    if args.smtp_host:
        fields.update(
            smtp_host=args.smtp_host,
            smtp_port=args.smtp_port or 465,
            smtp_security=args.smtp_security,
        )
        if args.smtp_login:
            fields.update(
                smtp_same_credentials=False,
                smtp_login=args.smtp_login,
                smtp_secret=secret_from_env(args.smtp_password_env or "", "--smtp-password-env"),
            )
    if args.smtp_no_login:
        fields.update(smtp_same_credentials=False, smtp_login="", smtp_secret="")
    return fields


def run_sync(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    mailboxes = [_mailbox(i) for i in args.ids]
    if args.background:
        return queue_syncs(mailboxes, out)
    for mailbox in mailboxes:
        sync_in_foreground(mailbox, out)
    return 0


def sync_in_foreground(mailbox, out: Output) -> None:  # type: ignore[no-untyped-def]
    from crmail.mailboxes.drivers.base import DriverError
    from crmail.mailboxes.tasks import AlreadySyncing, run_sync

    started = time.monotonic()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(
            *columns, console=out.err, transient=True, disable=not out.err.is_terminal
        ) as bar:
            task = bar.add_task(f"Syncing {mailbox.email}", total=None)

            def progress(m) -> None:  # type: ignore[no-untyped-def]
                bar.update(task, total=m.progress_total or None, completed=m.progress_done)

            report = run_sync(mailbox, progress=progress)
    except AlreadySyncing:
        raise CommandError(
            f"A sync of {mailbox.email} is already running; try again when it ends."
        ) from None
    except DriverError as exc:
        raise CommandError(f"The sync of {mailbox.email} failed: {exc}") from None
    seconds = time.monotonic() - started
    if report.paused:
        out.warn(mailbox.last_error)
    out.done(
        f"Synced {mailbox.email} in {seconds:.1f} s: {report.fetched} fetched "
        f"({report.bytes / 1e6:.1f} MB), {report.reused} found again, {report.removed} "
        f"removed, {report.flags_changed} with changed flags, "
        f"{count(report.folders, 'folder')}."
    )


def queue_syncs(mailboxes: list, out: Output) -> int:  # type: ignore[type-arg]
    from huey.contrib.djhuey import HUEY

    from crmail.mailboxes.tasks import request_sync

    if HUEY.immediate:
        raise CommandError(
            "CRMAIL_QUEUE_URL is memory://: there are no job workers to queue the sync for.",
            hint="Run the sync in the foreground: leave out --background.",
        )
    for mailbox in mailboxes:
        request_sync(mailbox)
        out.done(
            f"A sync of {mailbox.email} is queued; `crmail mailbox status {mailbox.pk}` follows it."
        )
    return 0


def run_status(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.mailboxes.actions import mailbox_status

    status = mailbox_status(_mailbox(args.id))
    if args.json:
        out.out.print_json(json.dumps(status.as_json()))
        return 0
    table = Table(show_header=False)
    rows = [
        ("Mailbox", f"{status.email} ({status.protocol.upper()})"),
        ("State", status.state_label),
        ("Progress", f"{status.done}/{status.total} messages, {status.bytes / 1e6:.1f} MB"),
        (
            "Last sync",
            f"{status.last_sync_at:%Y-%m-%d %H:%M:%S %Z}" if status.last_sync_at else "never",
        ),
        ("Messages stored", f"{status.messages_stored} ({status.bytes_stored / 1e6:.1f} MB)"),
        (
            "Parse failures",
            f"{status.parse_failures} (kept raw); "
            f"{status.parsed_with_fallbacks} read with fallbacks",
        ),
        ("Folders", str(status.folders)),
    ]
    if status.eta_seconds is not None:
        rows.append(("Time left", f"about {status.eta_seconds:.0f} s"))
    if status.last_error:
        rows.append(("Last error", status.last_error))
    for key, value in rows:
        table.add_row(key, value)
    out.out.print(table)
    return 0


def run_verify(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    mailboxes = [_mailbox(i) for i in args.ids]
    if len(mailboxes) == 1:
        return 0 if _verify_one(mailboxes[0], out) else 1
    agreeing = 0
    for n, mailbox in enumerate(mailboxes):
        if n:
            out.say("")  # a blank line between one mailbox's table and the next
        out.say(f"Mailbox {mailbox.pk}, {mailbox.email}:")
        try:
            agreeing += _verify_one(mailbox, out)
        except CommandError as exc:  # this server only: the others are still checked
            out.problem(exc.message)
    if agreeing == len(mailboxes):
        out.done(f"All {len(mailboxes)} mailboxes agree with their servers.")
        return 0
    differing = len(mailboxes) - agreeing
    verb = "does not agree with its server" if differing == 1 else "do not agree with their servers"
    out.problem(f"{differing} of {len(mailboxes)} mailboxes {verb}.")
    return 1


def _verify_one(mailbox, out: Output) -> bool:  # type: ignore[no-untyped-def]
    """Compare one mailbox with its server and print the table and the verdict."""
    from crmail.mailboxes.connect import open_driver
    from crmail.mailboxes.drivers.base import DriverError
    from crmail.mailboxes.verify import verify_mailbox

    try:
        driver = open_driver(mailbox)
        try:
            report = verify_mailbox(mailbox, driver)
        finally:
            driver.close()
    except DriverError as exc:
        raise CommandError(f"Could not read the server: {exc}") from None
    table = Table(
        "Folder",
        "On the server",
        "Stored",
        "Missing",
        "Extra",
        "Message-ID differs",
        "Size differs",
    )
    for check in report.folders:
        table.add_row(
            check.folder,
            str(check.on_server),
            str(check.stored),
            str(len(check.missing)),
            str(len(check.extra)),
            str(len(check.message_id_mismatches)),
            str(len(check.size_mismatches)),
        )
    out.out.print(table)
    if report.agrees:
        out.done("The server and crmail agree.")
        return True
    problem = f"{count(report.missing, 'message')} missing and {report.extra} extra"
    differ = sum(len(c.message_id_mismatches) + len(c.size_mismatches) for c in report.folders)
    if differ:
        problem += f"; {count(differ, 'stored message')} differ from the server's"
    out.problem(f"{problem}: run `crmail mailbox sync` and verify again.")
    return False


def run_deactivate(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.mailboxes.actions import deactivate_mailbox
    from crmail.people.actions import NotAllowed, first_admin

    mailbox = _mailbox(args.id)
    actor = first_admin() or mailbox.owner
    try:
        removed = deactivate_mailbox(actor, mailbox, keep_mail=args.keep_mail)
    except NotAllowed as exc:
        raise CommandError(str(exc)) from None
    kept = (
        "its mail stays"
        if args.keep_mail
        else f"{count(removed, 'message')} {'was' if removed == 1 else 'were'} deleted"
    )
    out.done(f"{mailbox.email} is deactivated: it syncs no more, and {kept}.")
    return 0


def run_lock(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.mailboxes.actions import set_locked
    from crmail.people.actions import first_admin

    owner = active_user(args.user, "EMAIL")
    admin = first_admin()
    if admin is None:
        raise CommandError("There is no administrator yet.", hint="Run `crmail init` first.")
    count = set_locked(admin, owner, not args.unlock)
    if not count:
        out.warn(f"{owner.email} has no mailbox yet: there is nothing to lock.")
        return 1
    state = "unlocked" if args.unlock else "locked: only administrators can change it"
    out.done(f"{owner.email}'s mail configuration is {state}.")
    return 0


def run_list(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.mailboxes.models import Mailbox

    mailboxes = Mailbox.objects.select_related("owner").order_by("owner__email", "pk")
    if args.user:
        mailboxes = mailboxes.filter(owner=active_user(args.user, "--user"))
    table = Table("Id", "Owner", "Mailbox", "Protocol", "Active", "State")
    for m in mailboxes:
        table.add_row(
            str(m.pk),
            m.owner.email,
            m.email,
            m.protocol.upper(),
            "yes" if m.is_active else "no",
            m.get_state_display(),
        )
    out.out.print(table)
    return 0
