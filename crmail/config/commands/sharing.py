"""``crmail sharing``: administrators set and review users' mail sharing (SPEC F5)."""

from __future__ import annotations

import argparse

from rich.table import Table

from crmail.config.commands.base import (
    CommandError,
    Output,
    active_user,
    any_user,
    field_errors,
    require_ready,
)

NAMES = {
    "mode": "MODE",
    "audience": "--share-with",
    "share_with": "--share-with",
    "excluded_domains": "--exclude-domain",
}


def register(commands: argparse._SubParsersAction) -> None:
    sharing = commands.add_parser(
        "sharing",
        help="set and show users' mail sharing",
        description="Who sees each user's synced mail: private (the user only), public "
        "(everyone who can access the record, or chosen users and groups), or custom (per "
        "record). Mail sent from crmail is always shared.",
    )
    sub = sharing.add_subparsers(dest="sharing_command", metavar="COMMAND")
    sharing.set_defaults(handler=lambda args, out: sharing.print_help() or 2, needs_django=False)

    set_ = sub.add_parser(
        "set",
        help="set a user's sharing (administrators' command: locked settings too)",
        description="Set a user's mail sharing. Public without --share-with shares with "
        "everyone who can access the record; with it, only with those users and groups "
        "(and the user's superiors in the role hierarchy). --exclude-domain replaces the "
        "excluded domains (mail whose other participants are all there stays private); "
        "without it they stay as they are.",
    )
    set_.add_argument("user", metavar="EMAIL")
    set_.add_argument("mode", metavar="MODE", choices=["private", "public", "custom"])
    set_.add_argument(
        "--share-with",
        action="append",
        metavar="EMAIL_OR_GROUP",
        help="a user's email or a group's name (repeat for several)",
    )
    set_.add_argument(
        "--exclude-domain", action="append", metavar="DOMAIN", help="repeat for several"
    )
    set_.add_argument(
        "--no-excluded-domains", action="store_true", help="remove every excluded domain"
    )
    lock = set_.add_mutually_exclusive_group()
    lock.add_argument("--lock", action="store_true", help="the user can no longer change it")
    lock.add_argument("--unlock", action="store_true")
    set_.set_defaults(handler=run_set, needs_django=True)

    default = sub.add_parser(
        "default",
        help="show or set the organisation's default sharing",
        description="The mode a new user starts with, preselected when a mailbox is "
        "connected: private (the owner only), public (everyone who can access the record) or "
        "custom (per record). Existing users' settings stay as they are. Without MODE, "
        "shows it.",
    )
    default.add_argument("mode", metavar="MODE", nargs="?", choices=["private", "public", "custom"])
    default.set_defaults(handler=run_default, needs_django=True)

    show = sub.add_parser(
        "show",
        help="show every user's sharing (or one user's in detail)",
        description="A table of users' settings: mode, who it is shared with, how many "
        "domains are excluded, whether an administrator locked it.",
    )
    show.add_argument("user", metavar="EMAIL", nargs="?")
    show.set_defaults(handler=run_show, needs_django=True)

    classify = sub.add_parser(
        "classify",
        help="work out the visibility classes of mail changed since (what reports read)",
        description="Reports count a million messages within seconds by asking who may see "
        "each kind of message once, not each message (its visibility class). Every change "
        "to mail, links, records' owners, excluded domains or addresses is noted, and the "
        "worker works the classes of the messages concerned out again every minute; until "
        "then those messages are asked the sharing rules directly, so reports are never "
        "wrong, only slower. This command does it now, for all of them (after an upgrade "
        "or an import, say) and says how far it got.",
    )
    classify.set_defaults(handler=run_classify, needs_django=True)


def run_set(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.people.actions import Invalid
    from crmail.sharing import actions

    user = active_user(args.user, "EMAIL")
    if args.exclude_domain and args.no_excluded_domains:
        raise CommandError("Give --exclude-domain or --no-excluded-domains, not both.")
    domains = [] if args.no_excluded_domains else args.exclude_domain
    if args.share_with and args.mode != "public":
        raise CommandError("--share-with goes with public mode only.")
    # Public: the chosen people, or everyone when none is given. Other modes keep them.
    share_with = (args.share_with or []) if args.mode == "public" else None
    try:
        actions.set_sharing(
            None, user, mode=args.mode, share_with=share_with, excluded_domains=domains
        )
    except Invalid as exc:
        raise CommandError(
            f"Cannot set {user.email}'s sharing:", details=field_errors(exc.errors, NAMES)
        ) from None
    if args.lock or args.unlock:
        actions.set_locked(None, user, args.lock)
    out.done(f"{user.email}: {describe(user)}.")
    return 0


def run_default(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.sharing import actions
    from crmail.sharing.models import Mode

    if args.mode:
        actions.set_organisation_default(None, args.mode)
        out.done(f"New users' mail sharing starts {Mode(args.mode).label.lower()}.")
        return 0
    mode = Mode(actions.organisation_default())
    out.say(f"Default mail sharing: {mode.label.lower()}. {actions.MODE_MEANINGS[mode]}")
    return 0


def describe(user) -> str:  # type: ignore[no-untyped-def]
    from crmail.sharing.queries import summary

    row = summary(user)
    words = row.mode_words
    if row.excluded:
        words += f"; excluded domains: {', '.join(row.excluded)}"
    if row.locked:
        words += "; locked"
    return words


def run_show(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.people.models import User
    from crmail.sharing.queries import summaries, summary

    if args.user:
        user = any_user(args.user, "EMAIL")
        row = summary(user)
        out.say(f"{user.email}: {row.mode_words}")
        out.say(f"Excluded domains: {', '.join(row.excluded) or 'none'}")
        if row.mode == "custom":
            out.say(f"Records shared: {row.shared_records}")
        out.say(f"Locked: {'yes' if row.locked else 'no'}")
        return 0
    table = Table("User", "Mode", "Shared with", "Excluded domains", "Locked")
    for row in summaries(User.objects.order_by("email")):
        table.add_row(
            row.email + ("" if row.active else " (deactivated)"),
            row.mode_label,
            row.shared_with,
            str(len(row.excluded)),
            "yes" if row.locked else "no",
        )
    out.out.print(table)
    return 0


def run_classify(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from crmail.sharing import classes

    waiting = classes.pending()
    if not waiting:
        out.done("Every message's visibility class is up to date.")
        return 0
    out.say(f"{waiting:,} changes to mail wait for their visibility classes.")
    done = 0
    while True:
        read = classes.classify(limit=50 * classes.BATCH)
        if not read:
            break
        done += read
        out.say(f"  {done:,} read")
    out.done(f"Visibility classes up to date ({done:,} changes read).")
    return 0
