"""The record access layer: owner, hierarchy, organisation defaults, admin."""

from __future__ import annotations

import pytest

from crmail.crm.models import Contact, Deal
from crmail.people import access
from crmail.people.models import ModuleDefault, Profile, Role
from tests import factories as f

pytestmark = pytest.mark.django_db


def ids(qs) -> set[int]:
    return set(qs.values_list("pk", flat=True))


def test_owner_sees_own_records_and_not_a_peers(org):
    mine = f.contact(org.rep)
    theirs = f.contact(org.peer)
    assert ids(access.visible(org.rep, Contact)) == {mine.pk}
    assert access.can(org.rep, mine) and not access.can(org.rep, theirs)


def test_manager_sees_subordinates_records_but_not_the_other_way(org):
    rep_contact = f.contact(org.rep)
    manager_contact = f.contact(org.manager)
    assert ids(access.visible(org.manager, Contact)) == {rep_contact.pk, manager_contact.pk}
    assert not access.can(org.rep, manager_contact)


def test_manager_of_another_branch_sees_nothing_of_this_branch(org):
    f.contact(org.rep)
    assert ids(access.visible(org.outsider_manager, Contact)) == set()


def test_admin_sees_everything(org):
    records = {f.contact(u).pk for u in (org.rep, org.peer, org.manager, org.outsider_manager)}
    assert ids(access.visible(org.admin, Contact)) == records


def test_hierarchy_reaches_through_several_levels(org):
    ceo = f.user("ceo@crmail.test", role_name="CEO")
    rep_contact = f.contact(org.rep)
    assert access.can(ceo, rep_contact)


def test_peers_see_each_other_when_the_role_shares_with_peers(org):
    peer_contact = f.contact(org.peer)
    org.rep.role.share_with_peers = True
    org.rep.role.save()
    org.rep.refresh_from_db()
    assert access.can(org.rep, peer_contact)


def test_public_read_only_lets_everyone_view_but_not_edit(org):
    ModuleDefault.objects.filter(module="contacts").update(level="public_read")
    peer_contact = f.contact(org.peer)
    assert access.can(org.rep, peer_contact, "view")
    assert not access.can(org.rep, peer_contact, "edit")


def test_public_read_write_lets_everyone_edit_but_only_owners_delete(org):
    ModuleDefault.objects.filter(module="contacts").update(level="public_read_write")
    peer_contact = f.contact(org.peer)
    assert access.can(org.rep, peer_contact, "edit")
    assert not access.can(org.rep, peer_contact, "delete")
    assert access.can(org.manager, peer_contact, "delete")


def test_module_defaults_are_per_module(org):
    ModuleDefault.objects.filter(module="deals").update(level="public_read")
    assert access.can(org.rep, f.deal(org.peer))
    assert not access.can(org.rep, f.contact(org.peer))


def test_profile_without_view_permission_sees_nothing_even_own(org):
    limited = Profile.objects.create(name="No deals", permissions={"contacts": ["view"]})
    org.rep.profile = limited
    org.rep.save()
    f.deal(org.rep)
    assert ids(access.visible(org.rep, Deal)) == set()
    assert not access.can_create(org.rep, Deal)
    assert access.can_create(f.user(), Deal)


def test_deactivated_user_sees_nothing(org):
    f.contact(org.rep)
    org.rep.is_active = False
    org.rep.save()
    assert ids(access.visible(org.rep, Contact)) == set()


def test_moving_a_role_moves_what_its_users_reach(org):
    rep_contact = f.contact(org.rep)
    assert not access.can(org.outsider_manager, rep_contact)
    # Put the rep's whole role under the other branch.
    rep_role = Role.objects.get(name="Sales Representative")
    rep_role.parent = Role.objects.get(name="Manager East")
    rep_role.save()
    org.outsider_manager.refresh_from_db()
    org.manager.refresh_from_db()
    assert access.can(org.outsider_manager, rep_contact)
    assert not access.can(org.manager, rep_contact)


def test_visible_is_one_query_whatever_the_number_of_records(org, django_assert_max_num_queries):
    for _ in range(30):
        f.contact(org.rep)
    with django_assert_max_num_queries(2):  # the module default, then the rows
        assert len(list(access.visible(org.manager, Contact))) == 30


def test_within_a_request_the_defaults_are_read_once_and_again_after_a_change(
    org, django_assert_max_num_queries
):
    from crmail.people.actions import set_module_defaults

    theirs = f.contact(org.peer)
    with access.remembering():
        with django_assert_max_num_queries(1):
            for module in ("contacts", "leads", "deals", "contacts"):
                access.module_level(module)
        assert not access.can(org.rep, theirs)
        set_module_defaults({"contacts": "public_read"}, by=org.admin)
        assert access.can(org.rep, theirs)  # the writer's change is seen at once
    ModuleDefault.objects.filter(module="contacts").update(level="private")
    assert not access.can(org.rep, theirs)  # outside a request: the table as it is now
