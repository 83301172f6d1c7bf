"""Small builders for test data: an organisation with a hierarchy, records with owners."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from crmail.crm.models import Account, Contact, Deal, Lead, Pipeline, Stage
from crmail.people.models import ApiToken, Profile, Role, User

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple"


def role(name: str) -> Role:
    """One of the seeded roles: CEO > Manager > Sales Representative, or a new one under CEO."""
    found = Role.objects.filter(name=name).first()
    return found or Role.objects.create(name=name, parent=Role.objects.get(name="CEO"))


def user(
    email: str | None = None,
    *,
    name: str = "",
    role_name: str = "Sales Representative",
    admin: bool = False,
    password: str = PASSWORD,
    sharing: str | None = "public",
    **extra: Any,
) -> User:
    """A user sharing their synced mail as ``sharing`` says (public, so that a test's mail is
    seen by colleagues unless it says otherwise; None: the organisation's default)."""
    from crmail.sharing.models import SharingSetting

    email = email or f"user{next(_seq)}@crmail.test"
    profile = Profile.objects.get(name="Administrator" if admin else "Standard")
    made = User.objects.create_user(
        email,
        password,
        name=name or email.split("@")[0],
        role=role(role_name),
        profile=profile,
        **extra,
    )
    if sharing is not None:
        SharingSetting.objects.filter(user=made).update(mode=sharing)
    return made


def token(for_user: User) -> str:
    return ApiToken.issue(for_user)[1]


def contact(
    owner: User,
    email: str | None = None,
    *,
    last_name: str = "",
    secondary: tuple[str, ...] = (),
    **fields: Any,
) -> Contact:
    n = next(_seq)
    record = Contact.objects.create(
        owner=owner,
        last_name=last_name or f"Contact{n}",
        first_name=fields.pop("first_name", "Pat"),
        **fields,
    )
    if email:
        record.emails.create(address=email.lower(), is_primary=True)
    for address in secondary:
        record.emails.create(address=address.lower(), is_primary=False)
    return record


def lead(owner: User, email: str | None = None, **fields: Any) -> Lead:
    n = next(_seq)
    record = Lead.objects.create(
        owner=owner, last_name=fields.pop("last_name", f"Lead{n}"), **fields
    )
    if email:
        record.emails.create(address=email.lower(), is_primary=True)
    return record


def account(owner: User, name: str = "", **fields: Any) -> Account:
    return Account.objects.create(owner=owner, name=name or f"Account {next(_seq)}", **fields)


def deal(owner: User, name: str = "", stage_name: str = "Qualification", **fields: Any) -> Deal:
    pipeline = Pipeline.objects.get(is_default=True)
    stage = Stage.objects.get(pipeline=pipeline, name=stage_name)
    return Deal.objects.create(
        owner=owner, name=name or f"Deal {next(_seq)}", pipeline=pipeline, stage=stage, **fields
    )


@dataclass
class Org:
    """The four viewpoints every access test needs."""

    admin: User
    manager: User
    rep: User  # reports to manager, in the role below
    peer: User  # same role as rep
    outsider_manager: User  # a manager in a sibling branch


def org() -> Org:
    sibling = Role.objects.create(name="Manager East", parent=Role.objects.get(name="CEO"))
    Role.objects.create(name="Rep East", parent=sibling)
    manager = user("manager@crmail.test", name="Mia Manager", role_name="Manager")
    return Org(
        admin=user("admin@crmail.test", name="Ada Admin", role_name="CEO", admin=True),
        manager=manager,
        rep=user("rep@crmail.test", name="Rex Rep", manager=manager),
        peer=user("peer@crmail.test", name="Pia Peer", manager=manager),
        outsider_manager=user("east@crmail.test", name="Eve East", role_name="Manager East"),
    )


def mailbox(
    server: Any,
    login: str,
    password: str,
    *,
    owner: User | None = None,
    protocol: str = "imap",
    **fields: Any,
) -> Any:
    """A mailbox on a test Dovecot (plain IMAP or POP3 on loopback)."""
    from crmail.mailboxes.models import Mailbox

    port = server.imap_port if protocol == "imap" else server.pop3_port
    return Mailbox.objects.create(
        owner=owner or user(),
        email=fields.pop("email", f"{login}@crmail.test"),
        protocol=protocol,
        host="127.0.0.1",
        port=port,
        security="none",
        login=login,
        secret=password,
        **fields,
    )


def api_mailbox(
    protocol: str, email: str, access_token: str, *, owner: User | None = None, **fields: Any
) -> Any:
    """A mailbox read through the Gmail API (``protocol="gmail"``) or Microsoft Graph
    (``"graph"``), signed in: a refresh token, and ``access_token`` valid for an hour
    (``fields`` override any of it)."""
    from datetime import timedelta

    from django.utils import timezone

    from crmail.mailboxes.models import Mailbox

    values: dict[str, Any] = {
        "owner": owner or user(),
        "email": email,
        "provider": {"gmail": "gmail", "graph": "outlook"}[protocol],
        "protocol": protocol,
        "auth_method": "oauth2",
        "secret": "refresh-token",
        "access_token": access_token,
        "access_token_expires_at": timezone.now() + timedelta(hours=1),
    }
    return Mailbox.objects.create(**{**values, **fields})
