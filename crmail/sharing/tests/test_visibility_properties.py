"""Property test: ``visible_messages`` agrees with a plain oracle written from SPEC F5.

Hypothesis builds organisations — a role tree, groups (users, roles, subordinate roles),
users (admins, deactivated ones) with sharing settings (private, public to everyone or to
chosen users and groups, custom with shared records, excluded domains, or no setting at
all), mailboxes (IMAP or POP3, with extra From addresses in any case), records with owners
and organisation-wide defaults, accounts with contacts, and messages with participants,
lying in several users' mailboxes, some sent from crmail, linked to records. Every
(viewer, message, record) triple and every (viewer, message) pair must agree with the
oracle, and so must every view of every record's Emails list (all, sent, IMAP, POP, each
user) and its choice of users, for a few (viewer, record) pairs of each organisation.

The oracle reads the generated spec with Python sets and walks the role tree by parent
indexes; it never calls the sharing code. For access to records it asks
``people.access.can``, which has a property test of its own.

``CRMAIL_PROPERTY_EXAMPLES=3000`` runs more examples (default 40, for a quick CI).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmail.crm.models import Account, Contact, Deal, Lead, Pipeline, Record
from crmail.mailboxes.models import Mailbox
from crmail.people import access
from crmail.people.models import Group, ModuleDefault, Profile, Role, User
from crmail.reports.queries import Filters, email_report, filtered_messages
from crmail.sharing import classes
from crmail.sharing.emails import mail_users, record_emails
from crmail.sharing.models import (
    ExcludedDomain,
    SharedRecord,
    ShareTarget,
    SharingSetting,
    VisibilityChange,
)
from crmail.sharing.tests import build
from crmail.sharing.visibility import (
    every_visible_message,
    may_see_message,
    visible_messages,
    visible_rows,
)

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("CRMAIL_PROPERTY_EXAMPLES", "40"))
LEVELS = ["public_read", "private", "public_read_write"]
MODULES = ["leads", "contacts", "accounts", "deals"]
USER_DOMAINS = ["acme.test", "eu.acme.test", "gmail.com"]
OUTSIDE = ["c1@cust.test", "c2@cust.test", "p@partner.test", "s@sub.partner.test", "g@gmail.com"]
DOMAIN_POOL = ["acme.test", "partner.test", "cust.test", "gmail.com", "eu.acme.test"]


@dataclass
class UserSpec:
    role: int
    admin: bool
    active: bool
    domain: str
    mailboxes: int  # 0, 1, or 2 (the second an inactive one at an alias address)
    protocols: tuple[str, str]  # of the first and second mailbox: "imap" or "pop3"
    extras: tuple[list[str], list[str]]  # extra From addresses of each mailbox, as typed
    has_setting: bool
    mode: str
    audience: str
    target_users: set[int]
    target_groups: set[int]
    excluded: set[str]
    shared: set[tuple[str, int]]  # (module, record index)

    def email(self, i: int) -> str:
        return f"u{i}@{self.domain}"


@dataclass
class MessageSpec:
    participants: list[tuple[str, str]]  # (role, address)
    mailboxes: set[tuple[int, int]]  # (user index, mailbox number)
    sent_by: int | None
    links: set[tuple[str, int]]


@dataclass
class OrgSpec:
    parents: list[int | None]
    peer_sharing: list[bool]
    users: list[UserSpec]
    groups: list[tuple[set[int], set[int], bool]]  # users, roles, include subordinates
    records: dict[str, list[int]]  # module -> owner index per record
    contact_accounts: list[int | None]  # account index per contact
    levels: dict[str, str]
    messages: list[MessageSpec] = field(default_factory=list)
    # (viewer, record) pairs whose Emails list views are checked: every view costs a
    # query, so a few pairs per organisation, chosen (and shrunk) by hypothesis.
    view_checks: set[tuple[int, tuple[str, int]]] = field(default_factory=set)


def alias(i: int) -> str:
    return f"alias{i}@home.test"  # a domain never excluded: only "own address" hides it


def extra_pool(i: int) -> list[str]:
    """What user ``i``'s mailboxes may send as: an address of their own (in any case), a
    customer's address (odd, but then it is theirs), a colleague's alias."""
    return [f"Sales{i}@Home.test", f"sales{i}@home.test", "C2@cust.test", alias(i + 1)]


@st.composite
def org_specs(draw: st.DrawFn) -> OrgSpec:
    n_roles = draw(st.integers(1, 5))
    parents: list[int | None] = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n_roles)]
    n_users = draw(st.integers(1, 5))
    n_groups = draw(st.integers(0, 3))
    records = {
        "leads": draw(st.lists(st.integers(0, n_users - 1), max_size=2)),
        "contacts": draw(st.lists(st.integers(0, n_users - 1), min_size=1, max_size=3)),
        "accounts": draw(st.lists(st.integers(0, n_users - 1), max_size=2)),
        "deals": draw(st.lists(st.integers(0, n_users - 1), max_size=2)),
    }
    all_records = [(m, k) for m in MODULES for k in range(len(records[m]))]
    n_accounts = len(records["accounts"])
    contact_accounts = [
        draw(st.none() | st.integers(0, n_accounts - 1)) if n_accounts else None
        for _ in records["contacts"]
    ]
    users_idx = st.integers(0, n_users - 1)
    users = []
    for i in range(n_users):
        users.append(
            UserSpec(
                role=draw(st.integers(0, n_roles - 1)),
                admin=draw(st.booleans()) and draw(st.booleans()),
                active=not (draw(st.booleans()) and draw(st.booleans())),
                domain=draw(st.sampled_from(USER_DOMAINS)),
                mailboxes=draw(st.sampled_from([1, 2, 0, 1, 2])),
                protocols=(
                    draw(st.sampled_from(["imap", "pop3"])),
                    draw(st.sampled_from(["imap", "pop3"])),
                ),
                extras=(
                    draw(st.lists(st.sampled_from(extra_pool(i)), max_size=2)),
                    draw(st.lists(st.sampled_from(extra_pool(i)), max_size=2)),
                ),
                has_setting=not (draw(st.booleans()) and draw(st.booleans())),
                mode=draw(st.sampled_from(["public", "custom", "private", "public"])),
                audience=draw(st.sampled_from(["everyone", "chosen"])),
                target_users=draw(st.sets(users_idx, max_size=2)) - {i},
                target_groups=draw(st.sets(st.integers(0, max(n_groups - 1, 0)), max_size=2))
                if n_groups
                else set(),
                excluded=draw(st.sets(st.sampled_from(DOMAIN_POOL), max_size=2)),
                shared=draw(st.sets(st.sampled_from(all_records), max_size=3)),
            )
        )
    groups = [
        (
            draw(st.sets(users_idx, max_size=2)),
            draw(st.sets(st.integers(0, n_roles - 1), max_size=2)),
            draw(st.booleans()),
        )
        for _ in range(n_groups)
    ]
    holders = [(i, b) for i, u in enumerate(users) for b in range(u.mailboxes)]
    addresses = (
        [u.email(i) for i, u in enumerate(users)]
        + [alias(i) for i in range(n_users)]
        + [f"sales{i}@home.test" for i in range(n_users)]
        + OUTSIDE
    )
    messages = []
    for _ in range(draw(st.integers(1, 6))):
        mailboxes = (
            draw(st.sets(st.sampled_from(holders), min_size=1, max_size=3)) if holders else set()
        )
        # Half the messages are among colleagues (users' addresses and aliases, one of
        # them the holder's own), where excluded domains and own addresses decide.
        pool = addresses
        if mailboxes and draw(st.booleans()):
            holder = min(mailboxes)[0]
            pool = [
                alias(holder),
                users[holder].email(holder),
                f"sales{holder}@home.test",
                "c2@cust.test",
                *addresses[:n_users],
            ]
        participants = [("from", draw(st.sampled_from(pool)))] + [
            (role, draw(st.sampled_from(pool)))
            for role in draw(st.lists(st.sampled_from(["to", "cc", "bcc"]), max_size=3))
        ]
        messages.append(
            MessageSpec(
                participants=participants,
                mailboxes=mailboxes,
                sent_by=draw(users_idx) if draw(st.integers(0, 4)) == 0 else None,
                links=draw(
                    st.sets(
                        st.sampled_from(all_records),
                        min_size=0 if draw(st.integers(0, 5)) == 5 else 1,
                        max_size=3,
                    )
                ),
            )
        )
    return OrgSpec(
        parents=parents,
        peer_sharing=[draw(st.booleans()) for _ in range(n_roles)],
        users=users,
        groups=groups,
        records=records,
        contact_accounts=contact_accounts,
        levels={m: draw(st.sampled_from(LEVELS)) for m in MODULES},
        messages=messages,
        view_checks=draw(
            st.sets(st.tuples(users_idx, st.sampled_from(all_records)), min_size=1, max_size=2)
        ),
    )


# --- the oracle: SPEC F5 in plain Python --------------------------------------------------


def ancestors(parents: list[int | None], role: int) -> set[int]:
    found: set[int] = set()
    parent = parents[role]
    while parent is not None:
        found.add(parent)
        parent = parents[parent]
    return found


def in_group(spec: OrgSpec, g: int, v: int) -> bool:
    members, roles, subordinates = spec.groups[g]
    role = spec.users[v].role
    if v in members or role in roles:
        return True
    return subordinates and bool(roles & ancestors(spec.parents, role))


def own_addresses(spec: OrgSpec, u: int) -> set[str]:
    """The user's email, their mailboxes' addresses and the extra addresses those mailboxes
    send as (all of their mailboxes, active or not), in lower case."""
    user = spec.users[u]
    found = {user.email(u)}
    if user.mailboxes >= 1:
        found.add(user.email(u))
        found |= {a.lower() for a in user.extras[0]}
    if user.mailboxes >= 2:
        found.add(alias(u))
        found |= {a.lower() for a in user.extras[1]}
    return found


def at_domain(address: str, domain: str) -> bool:
    host = address.rpartition("@")[2]
    return host == domain or host.endswith("." + domain)


def internal(spec: OrgSpec, u: int, m: MessageSpec) -> bool:
    excluded = spec.users[u].excluded
    if not excluded:
        return False
    others = [a for role, a in m.participants if role in ("from", "to", "cc")]
    others = [a for a in others if a not in own_addresses(spec, u)]
    return all(any(at_domain(a, d) for d in excluded) for a in others)


def shares(spec: OrgSpec, u: int, v: int, m: MessageSpec, record: tuple[str, int]) -> bool:
    """Whether owner ``u``'s synced copy of ``m`` is shared with ``v`` on ``record``."""
    owner = spec.users[u]
    if not owner.active or not owner.has_setting or owner.mode == "private":
        return False
    if owner.mode == "custom":
        return record in owner.shared
    audience = (
        owner.audience == "everyone"
        or v in owner.target_users
        or any(in_group(spec, g, v) for g in owner.target_groups)
        or spec.users[v].role in ancestors(spec.parents, owner.role)
    )
    return audience and not internal(spec, u, m)


def on_record(spec: OrgSpec, m: MessageSpec, record: tuple[str, int]) -> bool:
    if record in m.links:
        return True
    module, k = record
    return module == "accounts" and any(
        spec.contact_accounts[c] == k for mod, c in m.links if mod == "contacts"
    )


def own(m: MessageSpec, v: int) -> bool:
    return any(u == v for u, _ in m.mailboxes) or m.sent_by == v


def sees_on(spec: OrgSpec, can: dict, v: int, m: MessageSpec, record: tuple[str, int]) -> bool:
    if not spec.users[v].active or not on_record(spec, m, record) or not can[v, record]:
        return False
    if own(m, v) or m.sent_by is not None:
        return True
    return any(u != v and shares(spec, u, v, m, record) for u, _ in m.mailboxes)


def copy_visible(
    spec: OrgSpec, v: int, m: MessageSpec, record: tuple[str, int], copy: tuple[int, int]
) -> bool:
    """Whether ``v`` may see the copy of ``m`` in mailbox ``copy`` (owner, number) on
    ``record``: it is v's own, or its owner shares it with v there."""
    u, _ = copy
    return u == v or shares(spec, u, v, m, record)


def in_view(
    spec: OrgSpec,
    can: dict,
    v: int,
    m: MessageSpec,
    record: tuple[str, int],
    view: str,
    w: int | None = None,
) -> bool:
    """SPEC F4's views of a record's Emails list, narrowed by what ``v`` may see: a view
    matches through the copies ``v`` may see (or, by user, what ``w`` sent from crmail)."""
    if not sees_on(spec, can, v, m, record):
        return False
    seen = [b for b in sorted(m.mailboxes) if copy_visible(spec, v, m, record, b)]
    if view == "all":
        return True
    if view == "sent":
        return m.sent_by is not None
    if view in ("imap", "pop3"):
        return any(spec.users[u].protocols[n] == view for u, n in seen)
    assert view == "user"
    return m.sent_by == w or any(u == w for u, _ in seen)


def sees(spec: OrgSpec, can: dict, v: int, m: MessageSpec, records: list) -> bool:
    if not spec.users[v].active:
        return False
    return own(m, v) or any(sees_on(spec, can, v, m, r) for r in records)


def seen_through_users(spec: OrgSpec, can: dict, v: int, m: MessageSpec, records: list) -> set[int]:
    """The users a report by user counts ``m`` under for ``v`` (none if v may not see
    it): the owners of the copies v sees it through, and who sent it from crmail."""
    if not sees(spec, can, v, m, records):
        return set()
    found = {
        u
        for u, n in m.mailboxes
        if u == v
        or any(sees_on(spec, can, v, m, r) and copy_visible(spec, v, m, r, (u, n)) for r in records)
    }
    return found | ({m.sent_by} if m.sent_by is not None else set())


def sees_by(spec: OrgSpec, can: dict, v: int, m: MessageSpec, records: list, protocol: str) -> bool:
    """Whether ``v`` sees ``m`` through a copy in a mailbox of ``protocol`` (a report's
    source filter): a copy of v's own, or one whose owner shares it with v on a record
    v sees the message on."""
    if not sees(spec, can, v, m, records):
        return False
    return any(
        spec.users[u].protocols[n] == protocol
        and (
            u == v
            or any(
                sees_on(spec, can, v, m, r) and copy_visible(spec, v, m, r, (u, n)) for r in records
            )
        )
        for u, n in m.mailboxes
    )


# --- building the organisation in the database --------------------------------------------


def build_org(spec: OrgSpec):  # type: ignore[no-untyped-def]
    roles: list[Role] = []
    for i, parent in enumerate(spec.parents):
        roles.append(
            Role.objects.create(
                name=f"r{i}",
                parent=roles[parent] if parent is not None else None,
                share_with_peers=spec.peer_sharing[i],
            )
        )
    admin_profile = Profile.objects.get(name="Administrator")
    standard = Profile.objects.get(name="Standard")
    users = [
        User.objects.create_user(
            u.email(i),
            name=f"u{i}",
            role=roles[u.role],
            profile=admin_profile if u.admin else standard,
        )
        for i, u in enumerate(spec.users)
    ]
    boxes: dict[tuple[int, int], object] = {}
    for i, u in enumerate(spec.users):
        if u.mailboxes >= 1:
            boxes[i, 0] = build.mailbox(users[i], protocol=u.protocols[0])
        if u.mailboxes >= 2:
            boxes[i, 1] = build.mailbox(
                users[i], alias(i).upper(), active=False, protocol=u.protocols[1]
            )
        for n in range(u.mailboxes):
            Mailbox.objects.filter(pk=boxes[i, n].pk).update(extra_from_addresses=u.extras[n])
    groups = []
    for k, (members, group_roles, subordinates) in enumerate(spec.groups):
        group = Group.objects.create(name=f"g{k}", include_subordinate_roles=subordinates)
        group.users.set([users[i] for i in members])
        group.roles.set([roles[r] for r in group_roles])
        groups.append(group)
    for module, level in spec.levels.items():
        ModuleDefault.objects.update_or_create(module=module, defaults={"level": level})
    records: dict[tuple[str, int], Record] = {}
    for k, o in enumerate(spec.records["accounts"]):
        records["accounts", k] = Account.objects.create(owner=users[o], name=f"a{k}")
    for k, o in enumerate(spec.records["contacts"]):
        a = spec.contact_accounts[k]
        records["contacts", k] = Contact.objects.create(
            owner=users[o],
            last_name=f"c{k}",
            account=records["accounts", a] if a is not None else None,
        )
    for k, o in enumerate(spec.records["leads"]):
        records["leads", k] = Lead.objects.create(owner=users[o], last_name=f"l{k}")
    pipeline = Pipeline.objects.get(is_default=True)
    stage = pipeline.stages.first()
    for k, o in enumerate(spec.records["deals"]):
        records["deals", k] = Deal.objects.create(
            owner=users[o], name=f"d{k}", pipeline=pipeline, stage=stage
        )
    for i, u in enumerate(spec.users):
        SharingSetting.objects.filter(user=users[i]).delete()  # drop the signal's default
        if not u.has_setting:
            continue
        setting = SharingSetting.objects.create(user=users[i], mode=u.mode, audience=u.audience)
        ShareTarget.objects.bulk_create(
            [ShareTarget(setting=setting, user=users[t]) for t in u.target_users]
            + [ShareTarget(setting=setting, group=groups[g]) for g in u.target_groups]
        )
        ExcludedDomain.objects.bulk_create(
            [ExcludedDomain(setting=setting, domain=d) for d in u.excluded]
        )
        SharedRecord.objects.bulk_create(
            [
                SharedRecord(setting=setting, module=m, record_id=records[m, k].pk)
                for m, k in u.shared
            ]
        )
    messages = []
    for m in spec.messages:
        sender = next(a for role, a in m.participants if role == "from")
        msg = build.message(
            sender,
            on=[records[r] for r in sorted(m.links)],
            in_mailboxes=[boxes[b] for b in sorted(m.mailboxes)],
            sent_by=users[m.sent_by] if m.sent_by is not None else None,
        )
        msg.participants.all().delete()
        for pos, (role, address) in enumerate(m.participants):
            msg.participants.create(role=role, address=address, position=pos)
        messages.append(msg)
    # Deactivate last: a deactivated user still owns records and mailboxes.
    for i, u in enumerate(spec.users):
        if not u.active:
            User.objects.filter(pk=users[i].pk).update(is_active=False)
    return users, records, messages


def check(spec: OrgSpec) -> None:
    users, records, messages = build_org(spec)
    keys = sorted(records)
    viewers = [User.objects.select_related("role", "profile").get(pk=u.pk) for u in users]
    can = {
        (v, key): access.can(viewer, records[key], "view")
        for v, viewer in enumerate(viewers)
        for key in keys
    }
    wants: dict[int, set[int]] = {}
    for v, viewer in enumerate(viewers):
        for key in keys:
            got = set(
                visible_messages(viewer, *key_args(records[key])).values_list("pk", flat=True)
            )
            want = {
                msg.pk
                for msg, m in zip(messages, spec.messages, strict=True)
                if sees_on(spec, can, v, m, key)
            }
            assert got == want, ("on record", v, key)
            if (v, key) in spec.view_checks:
                check_views(spec, can, users, records, messages, v, viewer, key)
        got = set(visible_messages(viewer).values_list("pk", flat=True))
        want = {
            msg.pk
            for msg, m in zip(messages, spec.messages, strict=True)
            if sees(spec, can, v, m, keys)
        }
        assert got == want, ("overall", v)
        every = set(every_visible_message(viewer).values_list("pk", flat=True))
        assert every == want, ("overall, written for many messages", v)
        assert may_see_message(viewer, messages[0]) == (messages[0].pk in want)
        wants[v] = want
        by_user: dict[str, int] = {}
        for m in spec.messages:
            for u in seen_through_users(spec, can, v, m, keys):
                by_user[str(users[u].pk)] = by_user.get(str(users[u].pk), 0) + 1
        wants[v, "user"] = by_user
        for protocol in PROTOCOLS:
            wants[v, protocol] = {
                msg.pk
                for msg, m in zip(messages, spec.messages, strict=True)
                if sees_by(spec, can, v, m, keys, protocol)
            }
            found = filtered_messages(viewer, Filters(source=protocol))
            got = set(found.values_list("pk", flat=True))
            assert got == wants[v, protocol], ("source", protocol, "per candidate", v)
    check_classes(viewers, messages, wants)


GROUPS_THROUGH = ("user", "source", "record_type")
PROTOCOLS = ("imap", "pop3")


def check_classes(viewers: list[User], messages: list, wants: dict) -> None:  # type: ignore[type-arg]
    """Visibility classes (decision 063) change no answer: every message asked directly
    (each has a change since its class), then all classified, then half of them changed
    again. The reports grouped by what a message is seen through count the same, and a
    protocol as source (``visible_rows(viewer, protocol)``) keeps the messages seen
    through a copy of that protocol (``wants[v, protocol]``)."""

    def rows_by(viewer: User, protocol: str) -> set[int]:
        rows = visible_rows(viewer, protocol)
        with connection.cursor() as cursor:
            cursor.execute(rows.ids, rows.params)
            return {pk for (pk,) in cursor.fetchall()}

    def answers() -> list[tuple[object, ...]]:
        return [
            (
                set(every_visible_message(viewer).values_list("pk", flat=True)),
                [rows_by(viewer, protocol) for protocol in PROTOCOLS],
                [email_report(viewer, group).table() for group in GROUPS_THROUGH],
                email_report(viewer, "user", Filters(source="imap")).table(),
            )
            for viewer in viewers
        ]

    asked = answers()
    assert [a[0] for a in asked] == [wants[v] for v in range(len(viewers))]
    assert [a[1] for a in asked] == [
        [wants[v, protocol] for protocol in PROTOCOLS] for v in range(len(viewers))
    ], "source"
    for v, viewer in enumerate(viewers):
        got = {row.key: row.count for row in email_report(viewer, "user").rows}
        assert got == wants[v, "user"], ("by user", v)
    classes.classify()
    assert not VisibilityChange.objects.exists()
    assert answers() == asked, "all classified"
    VisibilityChange.objects.bulk_create(VisibilityChange(message_id=m.pk) for m in messages[::2])
    assert answers() == asked, "half changed since"


VIEWS = {"all": "all", "sent": "sent", "imap": "imap", "pop": "pop3"}


def check_views(spec, can, users, records, messages, v, viewer, key) -> None:  # type: ignore[no-untyped-def]
    """Each view of the record's Emails list, and its users to choose, as ``viewer``."""
    module, pk = key_args(records[key])
    pairs = list(zip(messages, spec.messages, strict=True))

    def got(view: str, user_id: int | None = None) -> set[int]:
        return set(record_emails(viewer, module, pk, view, user_id).values_list("pk", flat=True))

    for view, name in VIEWS.items():
        want = {msg.pk for msg, m in pairs if in_view(spec, can, v, m, key, name)}
        assert got(view) == want, ("view", view, v, key)
    choices = set()
    for w, user in enumerate(users):
        want = {msg.pk for msg, m in pairs if in_view(spec, can, v, m, key, "user", w)}
        assert got("user", user.pk) == want, ("view by user", w, v, key)
        if want:
            choices.add(user.pk)
    assert set(mail_users(viewer, module, pk).values_list("pk", flat=True)) == choices, (
        "users to choose",
        v,
        key,
    )


def key_args(record: Record) -> tuple[str, int]:
    return type(record).MODULE, record.pk


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=org_specs())
def test_visibility_agrees_with_the_oracle(spec: OrgSpec) -> None:
    with transaction.atomic():
        check(spec)
        transaction.set_rollback(True)
