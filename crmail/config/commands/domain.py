"""``crmail domain``: email authentication from the server (SPEC F10, decision 054). The
server's administrator adds a domain without the mailed code: running the command on the
server is the proof."""

from __future__ import annotations

import argparse
from typing import Any

from crmail.config.commands.base import CommandError, Output, require_ready


def register(commands: argparse._SubParsersAction) -> None:
    domain = commands.add_parser(
        "domain",
        help="email authentication: the domains crmail signs mail for",
        description="Add the organisation's mail domains, publish the SPF and DKIM records "
        "crmail shows, and validate them: mail crmail sends from an authenticated domain is "
        "DKIM-signed. Domains added here need no mailed code.",
    )
    sub = domain.add_subparsers(dest="domain_command", metavar="COMMAND")
    domain.set_defaults(handler=lambda args, out: domain.print_help() or 2, needs_django=False)
    add = sub.add_parser(
        "add",
        help="add a domain and print the DNS records to publish",
        description="Add DOMAIN with a new 2048-bit DKIM key and print the SPF value and "
        "the DKIM record (its full name and TXT value) to publish in its DNS.",
    )
    add.add_argument("domain", metavar="DOMAIN", help="such as example.com")
    add.set_defaults(handler=run_add, needs_django=True)
    validate = sub.add_parser(
        "validate",
        help="look a domain's records up now",
        description="Check DOMAIN's SPF and DKIM records in DNS (CRMAIL_DNS_SERVERS, else the "
        "system's resolvers). Exits 0 when it is authenticated; otherwise prints each "
        "problem in words and exits 1.",
    )
    validate.add_argument("domain", metavar="DOMAIN")
    validate.set_defaults(handler=run_validate, needs_django=True)
    listing = sub.add_parser("list", help="list the domains and their state")
    listing.set_defaults(handler=run_list, needs_django=True)
    delete = sub.add_parser(
        "delete",
        help="remove a domain and its key",
        description="Remove DOMAIN: mail from it is no longer signed. Remove its DKIM record "
        "from DNS afterwards.",
    )
    delete.add_argument("domain", metavar="DOMAIN")
    delete.set_defaults(handler=run_delete, needs_django=True)


def _find(name: str) -> Any:
    from crmail.domains import queries
    from crmail.domains.names import BadName, domain_name

    try:
        found = queries.find(domain_name(name))
    except BadName as exc:
        raise CommandError(str(exc)) from None
    if found is None:
        raise CommandError(f"{name} is not added.", hint=f"`crmail domain add {name}` adds it.")
    return found


def print_records(out: Output, domain: Any) -> None:
    from crmail.domains import keys, queries

    for record in queries.records(domain):
        out.say(f"{record.purpose}: a {record.type} record named {record.name}")
        out.say(f"  {record.value}" if record.value else "  (any one valid SPF record)")
        out.note(f"  {record.note}")
        if record.value:
            out.note(f"  In a zone file: {record.name}. IN TXT {keys.zone_strings(record.value)}")


def run_add(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.domains import actions

    try:
        domain = actions.add(args.domain, by=None)
    except actions.Invalid as exc:
        raise CommandError(str(exc)) from None
    out.done(f"{domain.name} is added and pending until its records are in DNS. Publish:")
    print_records(out, domain)
    out.note(
        f"Then run `crmail domain validate {domain.name}`; crmail also checks every 15 "
        "minutes for 48 hours."
    )
    return 0


def run_validate(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.domains import actions

    domain = _find(args.domain)
    report = actions.validate(domain, by=None)
    for finding in report.findings:
        if not finding.blocking:
            out.note(f"{finding.record}: {finding.words}")
        elif finding.ok:
            out.ok(f"{finding.record}: {finding.words}")
        else:
            out.problem(f"{finding.record}: {finding.words}")
    if domain.state == "authenticated":
        if not report.authenticated:
            out.warn(
                f"DNS did not answer, so {domain.name} stays authenticated; validate again later."
            )
            return 1
        out.done(f"{domain.name} is authenticated: mail crmail sends from it is DKIM-signed.")
        return 0
    out.say(f"{domain.name} is pending. The records to publish:")
    print_records(out, domain)
    return 1


def run_list(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from rich.table import Table

    from crmail.config.dates import when
    from crmail.domains import queries

    rows = list(queries.domains())
    if not rows:
        out.ok("No domain is added: `crmail domain add DOMAIN` adds one.")
        return 0
    table = Table("Domain", "State", "DKIM selector", "Checked", "Problems")
    for row in rows:
        table.add_row(
            row.name,
            row.get_state_display(),
            row.selector,
            when(row.checked_at) if row.checked_at else "never",
            str(len(row.problems)),
        )
    out.out.print(table)
    return 0


def run_delete(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.domains import actions

    domain = _find(args.domain)
    actions.delete(domain, by=None)
    out.done(
        f"{domain.name} is removed: mail from it is no longer signed. Its DKIM record "
        f"({domain.dkim_name}) can go from DNS."
    )
    return 0
