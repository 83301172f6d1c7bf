"""Property test: the access layer's queries agree with a plain oracle on generated orgs.

The oracle is written from the rules (owner, superiors in the role tree, peers when the
role shares, module defaults, profile permissions, admins) with Python sets and walks up
the tree; the access layer uses materialised paths in SQL. Every (user, record, action)
of every generated organisation must agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmail.crm.models import Contact, Deal, Pipeline
from crmail.people import access
from crmail.people.models import ModuleDefault, Profile, Role, User

pytestmark = pytest.mark.django_db
LEVELS = ["private", "public_read", "public_read_write"]


@dataclass
class OrgSpec:
    parents: list[int | None]  # parents[i] is the index of role i's parent (None: top)
    peer_sharing: list[bool]
    users: list[tuple[int, bool, bool, bool]]  # role index, admin, active, may view deals
    contacts: list[int]  # owner index per contact
    deals: list[int]
    contact_level: str
    deal_level: str


@st.composite
def org_specs(draw: st.DrawFn) -> OrgSpec:
    n_roles = draw(st.integers(1, 6))
    parents: list[int | None] = [None]
    for i in range(1, n_roles):
        parents.append(draw(st.integers(0, i - 1)))
    n_users = draw(st.integers(1, 7))
    users = [
        (
            draw(st.integers(0, n_roles - 1)),
            draw(st.booleans()) and draw(st.booleans()),
            draw(st.booleans()) or draw(st.booleans()),
            draw(st.booleans()) or draw(st.booleans()),
        )
        for _ in range(n_users)
    ]
    owners = st.integers(0, n_users - 1)
    return OrgSpec(
        parents=parents,
        peer_sharing=[draw(st.booleans()) for _ in range(n_roles)],
        users=users,
        contacts=draw(st.lists(owners, max_size=8)),
        deals=draw(st.lists(owners, max_size=5)),
        contact_level=draw(st.sampled_from(LEVELS)),
        deal_level=draw(st.sampled_from(LEVELS)),
    )


def ancestors(parents: list[int | None], role: int) -> set[int]:
    found: set[int] = set()
    parent = parents[role]
    while parent is not None:
        found.add(parent)
        parent = parents[parent]
    return found


def oracle(spec: OrgSpec, viewer: int, owner: int, module: str, action: str) -> bool:
    role, admin, active, may_view_deals = spec.users[viewer]
    if not active:
        return False
    if admin:
        return True
    if module == "deals" and not may_view_deals:
        return False
    level = spec.contact_level if module == "contacts" else spec.deal_level
    if action == "view" and level in ("public_read", "public_read_write"):
        return True
    if action == "edit" and level == "public_read_write":
        return True
    owner_role = spec.users[owner][0]
    if owner == viewer:
        return True
    if role in ancestors(spec.parents, owner_role):
        return True
    return owner_role == role and spec.peer_sharing[role]


def build(spec: OrgSpec) -> tuple[list[User], list[Contact], list[Deal]]:
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
    no_deals = Profile.objects.create(
        name="No deals", permissions={"contacts": ["view", "create", "edit", "delete"]}
    )
    users = [
        User.objects.create_user(
            f"u{i}@org.test",
            name=f"u{i}",
            role=roles[r],
            is_active=active,
            profile=admin_profile if admin else (standard if deals else no_deals),
        )
        for i, (r, admin, active, deals) in enumerate(spec.users)
    ]
    ModuleDefault.objects.filter(module="contacts").update(level=spec.contact_level)
    ModuleDefault.objects.filter(module="deals").update(level=spec.deal_level)
    contacts = [
        Contact.objects.create(owner=users[o], last_name=f"c{k}")
        for k, o in enumerate(spec.contacts)
    ]
    pipeline = Pipeline.objects.get(is_default=True)
    stage = pipeline.stages.first()
    deals = [
        Deal.objects.create(owner=users[o], name=f"d{k}", pipeline=pipeline, stage=stage)
        for k, o in enumerate(spec.deals)
    ]
    return users, contacts, deals


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=org_specs())
def test_access_layer_agrees_with_the_oracle(spec: OrgSpec) -> None:
    with transaction.atomic():
        users, contacts, deals = build(spec)
        for v, viewer in enumerate(users):
            viewer = User.objects.select_related("role", "profile").get(pk=viewer.pk)
            for module, model, records, owners in (
                ("contacts", Contact, contacts, spec.contacts),
                ("deals", Deal, deals, spec.deals),
            ):
                for action in ("view", "edit", "delete"):
                    got = set(access.visible(viewer, model, action).values_list("pk", flat=True))
                    want = {
                        r.pk
                        for r, o in zip(records, owners, strict=True)
                        if oracle(spec, v, o, module, action)
                    }
                    assert got == want, (module, action, v)
        transaction.set_rollback(True)
