"""``crmail group``: the groups mail is shared with (add, change, list, remove)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.table import Table

from crmail.config.commands.base import CommandError, Output, field_errors, require_ready
from crmail.config.commands.people import usage

if TYPE_CHECKING:
    from crmail.people.models import Group

OPTION_NAMES = {
    "name": "NAME",
    "description": "--description",
    "users": "--member",
    "roles": "--role",
    "include_subordinate_roles": "--include-roles-below",
}


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "group",
        help="add, change, list and remove groups",
        description=(
            "Groups are sets of users, named one by one or through their roles; mail is "
            "shared with a group at once (`crmail sharing set … --share-with GROUP`)."
        ),
    )
    group_commands = group.add_subparsers(dest="group_command", metavar="COMMAND")
    group.set_defaults(handler=lambda args, out: usage(group), needs_django=False)

    for verb, help_text in (("add", "add a group"), ("change", "change a group")):
        sub = group_commands.add_parser(verb, help=help_text, description=help_text.capitalize())
        sub.add_argument("name", metavar="NAME", help="the group's name")
        if verb == "change":
            sub.add_argument("--rename", metavar="NEW_NAME", help="give the group a new name")
        sub.add_argument("--description", help="what the group is for")
        sub.add_argument(
            "--member",
            action="append",
            metavar="EMAIL",
            help="a member (repeat for each; on change, the members are replaced)",
        )
        sub.add_argument(
            "--role",
            action="append",
            metavar="ROLE",
            help="a role whose users are members (repeat for each; replaces on change)",
        )
        sub.add_argument(
            "--include-roles-below",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="users in roles below the given roles are members too",
        )
        sub.set_defaults(handler=run_group_save, needs_django=True, verb=verb)

    listing = group_commands.add_parser(
        "list", help="list groups", description="List the groups and their members."
    )
    listing.set_defaults(handler=run_group_list, needs_django=True)
    remove = group_commands.add_parser(
        "remove", help="remove a group", description="Remove a group; sharing through it stops."
    )
    remove.add_argument("name", metavar="NAME", help="the group's name")
    remove.set_defaults(handler=run_group_remove, needs_django=True)


def _find(name: str) -> Group:
    from crmail.people.models import Group

    found = Group.objects.filter(name__iexact=name.strip()).first()
    if found is None:
        raise CommandError(
            f"NAME: there is no group named {name!r}.", hint="`crmail group list` shows them."
        )
    return found


def run_group_save(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.people import actions

    changes: dict[str, object] = {}
    if args.verb == "add":
        changes["name"] = args.name
    elif args.rename is not None:
        changes["name"] = args.rename
    if args.description is not None:
        changes["description"] = args.description
    if args.member is not None:
        changes["users"] = args.member
    if args.role is not None:
        changes["roles"] = args.role
    if args.include_roles_below is not None:
        changes["include_subordinate_roles"] = args.include_roles_below
    try:
        if args.verb == "add":
            group = actions.create_group(changes, by=None)
        else:
            group = actions.update_group(_find(args.name), changes, by=None)
    except actions.Invalid as exc:
        names = dict(OPTION_NAMES, name="--rename" if args.verb == "change" else "NAME")
        raise CommandError(
            f"The group was not {'added' if args.verb == 'add' else 'changed'}:",
            details=field_errors(exc.errors, names),
        ) from None
    members = len(group.member_ids())
    out.done(
        f"{'Added' if args.verb == 'add' else 'Changed'} group {group.name}: "
        f"{members} member{'s' if members != 1 else ''}."
    )
    return 0


def run_group_list(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.people.models import Group

    rows = list(Group.objects.prefetch_related("users", "roles").order_by("name"))
    if not rows:
        out.say("No groups yet: `crmail group add NAME --member EMAIL` adds one.")
        return 0
    table = Table("Group", "Members", "Roles", "Description")
    for group in rows:
        roles = ", ".join(r.name for r in group.roles.all())
        if roles and group.include_subordinate_roles:
            roles += " and below"
        table.add_row(
            group.name,
            ", ".join(u.email for u in group.users.all()) or "—",
            roles or "—",
            group.description,
        )
    out.out.print(table)
    return 0


def run_group_remove(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.people import actions

    group = _find(args.name)
    actions.delete_group(group, by=None)
    out.done(f"Removed group {group.name}.")
    return 0
