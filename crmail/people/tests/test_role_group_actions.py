"""The writers of roles, groups and access defaults: the web pages, the API and the
command line all go through them, so each refusal is said once, the same everywhere."""

from __future__ import annotations

import pytest

from crmail.people import actions
from crmail.people.models import AccessLevel, Group, ModuleDefault, Role
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_a_role_cannot_report_to_itself_or_below_it_and_names_stay_unique():
    admin = f.user(admin=True)
    manager, rep = Role.objects.get(name="Manager"), Role.objects.get(name="Sales Representative")
    with pytest.raises(actions.Invalid) as refused:
        actions.update_role(manager, {"parent": rep, "name": "sales representative"}, by=admin)
    messages = {e["field"]: e["message"] for e in refused.value.errors}
    assert "below it" in messages["parent"] and "already exists" in messages["name"]
    manager.refresh_from_db()
    assert manager.name == "Manager" and manager.parent.name == "CEO"

    actions.update_role(rep, {"name": "Account Executive", "parent": "CEO"}, by=admin)
    rep.refresh_from_db()
    assert rep.name == "Account Executive" and rep.path == f"/{rep.parent_id}/{rep.pk}/"
    with pytest.raises(actions.NotAllowed):
        actions.update_role(rep, {"name": "Boss"}, by=f.user())


def test_creating_a_role_reports_every_problem_at_once():
    with pytest.raises(actions.Invalid) as refused:
        actions.create_role("Manager", parent="Nobody", by=f.user(admin=True))
    assert {e["field"] for e in refused.value.errors} == {"name", "parent"}


def test_a_group_is_written_with_its_members_and_refused_whole_on_a_problem():
    admin, ann, gone = f.user(admin=True), f.user("ann@example.com"), f.user(is_active=False)
    group = actions.create_group(
        {"name": " West ", "users": [ann, "ann@example.com"], "roles": ["Manager"]}, by=admin
    )
    assert group.name == "West"
    assert set(group.users.all()) == {ann} and [r.name for r in group.roles.all()] == ["Manager"]

    with pytest.raises(actions.Invalid) as refused:
        actions.update_group(
            group, {"name": "west", "users": [gone, "nobody@example.com"]}, by=admin
        )
    assert {e["field"] for e in refused.value.errors} == {"users"}  # its own name is no clash
    other = actions.create_group({"name": "East"}, by=admin)
    with pytest.raises(actions.Invalid, match="already exists"):
        actions.update_group(other, {"name": "WEST"}, by=admin)
    with pytest.raises(actions.Invalid, match="A name is required"):
        actions.create_group({"name": "  "}, by=admin)
    assert set(group.users.all()) == {ann}
    with pytest.raises(actions.NotAllowed):
        actions.delete_group(group, by=ann)
    actions.delete_group(group, by=admin)
    assert not Group.objects.filter(pk=group.pk).exists()


def test_access_defaults_take_known_modules_and_levels_only():
    admin = f.user(admin=True)
    before = dict(ModuleDefault.objects.values_list("module", "level"))
    with pytest.raises(actions.Invalid) as refused:
        actions.set_module_defaults(
            {"leads": AccessLevel.PUBLIC_READ, "contacts": "everyone", "widgets": "private"},
            by=admin,
        )
    assert {e["field"] for e in refused.value.errors} == {"contacts", "widgets"}
    assert dict(ModuleDefault.objects.values_list("module", "level")) == before
    actions.set_module_defaults({"contacts": AccessLevel.PUBLIC_READ}, by=admin)
    assert ModuleDefault.objects.get(module="contacts").level == AccessLevel.PUBLIC_READ
    with pytest.raises(actions.NotAllowed):
        actions.set_module_defaults({"contacts": AccessLevel.PRIVATE}, by=f.user())
