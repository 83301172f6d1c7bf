"""``crmail user``, ``crmail role`` and ``crmail token``: people, the hierarchy, API tokens."""

from __future__ import annotations

import argparse

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from crmail.config.commands.base import (
    CommandError,
    Output,
    active_user,
    field_errors,
    require_ready,
    secret_from_env,
)


def register(commands: argparse._SubParsersAction) -> None:
    user = commands.add_parser(
        "user", help="add and list users", description="Add and list the people who sign in."
    )
    user_commands = user.add_subparsers(dest="user_command", metavar="COMMAND")
    user.set_defaults(handler=lambda args, out: usage(user), needs_django=False)

    add = user_commands.add_parser(
        "add",
        help="add a user",
        description=(
            "Add a user. Roles, profiles and managers must exist already (`crmail role list`, "
            "`crmail user list`). Without --password-env the user cannot sign in with a "
            "password, but can use API tokens."
        ),
    )
    add.add_argument("email", metavar="EMAIL", help="the address the user signs in with")
    add.add_argument("--name", required=True, help="the user's full name")
    add.add_argument("--role", help="role name (default: Sales Representative; CEO with --admin)")
    add.add_argument(
        "--profile", help="profile name (default: Standard; Administrator with --admin)"
    )
    add.add_argument("--manager", metavar="EMAIL", help="the email of the user they report to")
    add.add_argument(
        "--admin",
        action="store_true",
        help="an administrator: sees and changes everything, and may use the back office",
    )
    add.add_argument(
        "--password-env",
        metavar="VAR",
        help="take the password from this environment variable (never from the command line)",
    )
    add.set_defaults(handler=run_user_add, needs_django=True)

    listing = user_commands.add_parser("list", help="list users", description="List all users.")
    listing.set_defaults(handler=run_user_list, needs_django=True)

    role = commands.add_parser(
        "role",
        help="add and list roles",
        description="Roles form the hierarchy: users see what users in roles below theirs own.",
    )
    role_commands = role.add_subparsers(dest="role_command", metavar="COMMAND")
    role.set_defaults(handler=lambda args, out: usage(role), needs_django=False)
    role_add = role_commands.add_parser(
        "add", help="add a role", description="Add a role reporting to another role."
    )
    role_add.add_argument("name", metavar="NAME", help="the new role's name")
    role_add.add_argument("--parent", required=True, metavar="NAME", help="the role it reports to")
    role_add.add_argument(
        "--share-with-peers",
        action="store_true",
        help="users with this role see each other's records",
    )
    role_add.set_defaults(handler=run_role_add, needs_django=True)
    role_list = role_commands.add_parser(
        "list", help="show the role hierarchy", description="Show the role hierarchy."
    )
    role_list.set_defaults(handler=run_role_list, needs_django=True)

    token = commands.add_parser(
        "token",
        help="create, list and revoke API tokens",
        description="Tokens for the REST API.",
    )
    token_commands = token.add_subparsers(dest="token_command", metavar="COMMAND")
    token.set_defaults(handler=lambda args, out: usage(token), needs_django=False)
    create = token_commands.add_parser(
        "create",
        help="create an API token and print it",
        description=(
            "Create an API token for a user and print it on standard output, alone, so that "
            "TOKEN=$(crmail token create EMAIL) works. It is shown only this once."
        ),
    )
    create.add_argument("email", metavar="EMAIL", help="the user the token acts as")
    create.add_argument("--name", default="", help="a label to recognise the token by")
    create.set_defaults(handler=run_token_create, needs_django=True)
    listing = token_commands.add_parser(
        "list",
        help="list a user's API tokens",
        description="A user's API tokens, newest first: id, name, the first characters, "
        "when made and last used, and whether revoked. Secrets are never shown again.",
    )
    listing.add_argument("email", metavar="EMAIL")
    listing.set_defaults(handler=run_token_list, needs_django=True)
    revoke = token_commands.add_parser(
        "revoke",
        help="revoke an API token",
        description="Revoke an API token by its id (`crmail token list EMAIL` shows the ids): "
        "it stops working at once.",
    )
    revoke.add_argument("id", type=int, metavar="ID")
    revoke.set_defaults(handler=run_token_revoke, needs_django=True)


def usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_user_add(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.people import actions

    password = None
    if args.password_env:
        password = secret_from_env(
            args.password_env,
            "--password-env",
            hint=f"Set it first, for example: read -s {args.password_env}; "
            f"export {args.password_env}",
        )
    try:
        user = actions.create_user(
            args.email,
            name=args.name,
            role=args.role,
            profile=args.profile,
            manager=args.manager,
            admin=args.admin,
            password=password,
        )
    except actions.Invalid as exc:
        names = {
            "email": "EMAIL",
            "name": "--name",
            "role": "--role",
            "profile": "--profile",
            "manager": "--manager",
            "password": f"--password-env {args.password_env}",
        }
        raise CommandError(
            "The user was not added:", details=field_errors(exc.errors, names)
        ) from None
    manager = f", reports to {user.manager.email}" if user.manager else ""
    admin = ", administrator" if args.admin else ""
    out.done(
        f"Added {user.email} ({user.name}): role {user.role}, profile {user.profile}"
        f"{admin}{manager}."
    )
    if password is None:
        out.note(
            "No password was set, so they cannot sign in with one yet "
            "(give one with --password-env). API tokens work: crmail token create "
            f"{user.email}"
        )
    return 0


def run_user_list(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.people.models import User

    users = User.objects.select_related("role", "profile", "manager").order_by("email")
    table = Table(title="Users")
    for column in ("Email", "Name", "Role", "Profile", "Reports to", "Admin", "Status"):
        table.add_column(column)
    for user in users:
        table.add_row(
            Text(user.email),
            Text(user.name),
            Text(str(user.role or "—")),
            Text(str(user.profile or "—")),
            Text(user.manager.email if user.manager else "—"),
            "yes" if user.is_superuser or (user.profile and user.profile.is_admin) else "",
            "active" if user.is_active else Text("deactivated", style="red"),
        )
    if not table.row_count:
        out.say("No users yet: run `crmail init` to add the first administrator.")
        return 0
    out.out.print(table)
    return 0


def run_role_add(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.people import actions

    try:
        role = actions.create_role(
            args.name, parent=args.parent, share_with_peers=args.share_with_peers
        )
    except actions.Invalid as exc:
        raise CommandError(
            "The role was not added:",
            details=field_errors(exc.errors, {"name": "NAME", "parent": "--parent"}),
        ) from None
    out.done(f"Added role {role.name}, reporting to {role.parent}.")
    return 0


def run_role_list(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from django.db.models import Count

    from crmail.people.models import Role

    roles = list(Role.objects.annotate(members=Count("users")).order_by("path"))
    if not roles:
        out.say("No roles yet: run `crmail init`.")
        return 0
    tree = Tree(Text("Roles", style="bold"))
    nodes: dict[int, Tree] = {}
    for role in roles:
        label = Text(role.name)
        label.append(f"  {role.members} user{'s' if role.members != 1 else ''}", style="dim")
        if role.share_with_peers:
            label.append("  shares with peers", style="cyan")
        parent = nodes.get(role.parent_id) if role.parent_id else None
        nodes[role.pk] = (parent or tree).add(label)
    out.out.print(tree)
    return 0


def run_token_create(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.people.actions import Invalid, create_token

    user = active_user(args.email, "EMAIL")
    try:
        row, secret = create_token(user, name=args.name)
    except Invalid as exc:
        raise CommandError(
            "The token was not made:", details=field_errors(exc.errors, {"name": "--name"})
        ) from None
    print(secret, flush=True)
    out.note(
        f"API token {row.hint}… for {user.email}. It is shown only this once: keep it safe. "
        "Send it as the header  Authorization: Bearer <token>"
    )
    return 0


def run_token_list(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.config.dates import when
    from crmail.people.actions import find_user, tokens_of

    user = find_user(args.email)
    if user is None:
        raise CommandError(
            f"EMAIL: there is no user with the email {args.email!r}.",
            hint="`crmail user list` shows the users.",
        )
    rows = tokens_of(user)
    if not rows:
        out.say(f"{user.email} has no API tokens.")
        return 0
    table = Table("ID", "Name", "Starts with", "Created", "Last used", "Revoked")
    for row in rows:
        table.add_row(
            str(row.pk),
            row.name or "-",
            f"{row.hint}…",
            when(row.created_at),
            when(row.last_used_at) or "never",
            when(row.revoked_at) or "no",
        )
    out.out.print(table)
    return 0


def run_token_revoke(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.people.actions import revoke_token
    from crmail.people.models import ApiToken

    row = ApiToken.objects.select_related("user").filter(pk=args.id).first()
    if row is None:
        raise CommandError(
            f"There is no API token with id {args.id}.",
            hint="`crmail token list EMAIL` shows a user's tokens and their ids.",
        )
    if revoke_token(row):
        out.done(f"API token {row.pk} ({row.hint}…) of {row.user.email} is revoked.")
    else:
        out.say(f"API token {row.pk} of {row.user.email} was already revoked.")
    return 0
