"""``crmail dropbox``: users' BCC Dropbox addresses, the SMTP receiver run alone, and what
it refused (SPEC F6, decision 052)."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from crmail.config.commands.base import CommandError, Output, any_user, require_ready
from crmail.config.commands.serve import port_number


def register(commands: argparse._SubParsersAction) -> None:
    dropbox = commands.add_parser(
        "dropbox",
        help="BCC Dropbox addresses and the SMTP receiver",
        description="Each user has a dropbox address at CRMAIL_DROPBOX_DOMAIN: mail they "
        "Bcc or forward to it from their own addresses is stored and filed on the contact's "
        "deal in crmail.",
    )
    sub = dropbox.add_subparsers(dest="dropbox_command", metavar="COMMAND")
    dropbox.set_defaults(handler=lambda args, out: dropbox.print_help() or 2, needs_django=False)
    address = sub.add_parser(
        "address",
        help="print a user's dropbox address",
        description="Print the user's current dropbox address (made the first time). With "
        "--regenerate, a new address replaces it: mail to the old one is refused from then on.",
    )
    address.add_argument("email", metavar="EMAIL", help="the user's sign-in address")
    address.add_argument(
        "--regenerate", action="store_true", help="retire the current address, make a new one"
    )
    address.set_defaults(handler=run_address, needs_django=True)
    serve = sub.add_parser(
        "serve",
        help="run the dropbox's SMTP receiver alone",
        description="Receive dropbox mail over SMTP without the web app (for a machine of "
        "its own behind the MX). Stored mail is filed by the job workers (crmail serve or "
        "crmail worker sharing the database and queue). Stop it with Ctrl-C or SIGTERM.",
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (%(default)s)")  # noqa: S104
    serve.add_argument("--port", type=port_number, required=True, help="port to listen on")
    serve.set_defaults(handler=run_serve, needs_django=True)
    refusals = sub.add_parser(
        "refusals",
        help="list mail the receiver refused",
        description="The latest mail the dropbox receiver refused, newest first, and why.",
    )
    refusals.add_argument("--limit", type=int, default=50, metavar="N", help="how many")
    refusals.set_defaults(handler=run_refusals, needs_django=True)


def _domain_or_explain() -> str:
    from crmail.dropbox import addresses

    domain = addresses.domain()
    if not domain:
        raise CommandError(
            "No dropbox: CRMAIL_DROPBOX_DOMAIN is not set.",
            hint="Set it to the domain whose mail reaches crmail's receiver, such as "
            "dropbox.example.com (its MX record pointing at this machine).",
        )
    return domain


def run_address(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.dropbox import actions, addresses

    _domain_or_explain()
    user = any_user(args.email, "EMAIL")
    if args.regenerate:
        old = addresses.current(user)
        made = actions.regenerate(user)
        out.note(f"{addresses.full(old)} is retired: mail to it is refused from now on.")
    else:
        made = addresses.current(user)
    out.say(addresses.full(made))
    return 0


def run_serve(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    domain = _domain_or_explain()
    receiver = start_receiver(args.host, args.port)
    stopped = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopped.set()

    previous = signal.signal(signal.SIGTERM, stop)
    tls = ", STARTTLS offered" if receiver.tls else ""
    out.done(f"The dropbox receiver takes mail for *@{domain} on {args.host}:{args.port}{tls}.")
    out.note("Press Ctrl-C to stop.")
    try:
        while not stopped.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
        signal.signal(signal.SIGTERM, previous)
    out.done("The dropbox receiver has stopped.")
    return 0


def start_receiver(host: str, port: int) -> Any:
    """Bind and start the receiver, or say in words why it cannot listen there."""
    from crmail.dropbox.server import Receiver

    receiver = Receiver(host, port)
    try:
        receiver.start()
    except (OSError, RuntimeError) as exc:
        raise CommandError(
            f"The dropbox receiver cannot listen on {host}:{port}: {exc}.",
            hint="Choose another port (CRMAIL_DROPBOX_PORT, or --port), or stop the program "
            "using it.",
        ) from None
    return receiver


def run_refusals(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from rich.table import Table

    from crmail.config.dates import when
    from crmail.dropbox import queries

    rows = list(queries.refusals()[: max(1, args.limit)])
    if not rows:
        out.ok("The dropbox receiver has refused nothing.")
        return 0
    table = Table("When", "Stage", "Sender", "Recipient", "Reply")
    for row in rows:
        table.add_row(
            when(row.at),
            row.get_stage_display(),
            row.header_from or row.envelope_from,
            row.recipient,
            row.reply,
        )
    out.out.print(table)
    return 0
