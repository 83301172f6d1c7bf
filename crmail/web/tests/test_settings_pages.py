"""Administrators' pages: users, roles, groups, default access; nobody else gets in."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crmail.people.models import AccessLevel, Group, ModuleDefault, Profile, Role, User
from tests import factories as f

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    ("web:users", []),
    ("web:user_create", []),
    ("web:roles", []),
    ("web:role_create", []),
    ("web:groups", []),
    ("web:group_create", []),
    ("web:access_defaults", []),
]


@pytest.mark.parametrize(("name", "args"), ADMIN_PAGES)
def test_admin_pages_refuse_non_admins(org, client_for, name, args):
    client = client_for(org.manager)
    get = client.get(reverse(name, args=args))
    assert get.status_code == 403
    assert "Only administrators" in get.content.decode()
    assert client.post(reverse(name, args=args), {"name": "X"}).status_code == 403


def test_admin_pages_refuse_non_admins_on_existing_objects(org, client_for):
    client = client_for(org.rep)
    assert client.get(reverse("web:user_edit", args=[org.rep.pk])).status_code == 403
    response = client.post(reverse("web:user_set_active", args=[org.peer.pk]), {"active": "0"})
    assert response.status_code == 403
    org.peer.refresh_from_db()
    assert org.peer.is_active


@pytest.mark.parametrize(("name", "args"), ADMIN_PAGES)
def test_admin_pages_open_for_admins(org, client_for, name, args):
    assert client_for(org.admin).get(reverse(name, args=args)).status_code == 200


def test_admin_links_show_only_for_admins(org, client_for):
    assert ">Users<" in client_for(org.admin).get(reverse("web:home")).content.decode()
    assert ">Users<" not in client_for(org.rep).get(reverse("web:home")).content.decode()


def test_admin_creates_a_user_who_can_sign_in(org, client_for, client):
    response = client_for(org.admin).post(
        reverse("web:user_create"),
        {
            "name": "Nina New",
            "email": "Nina@crmail.test",
            "role": Role.objects.get(name="Sales Representative").pk,
            "profile": Profile.objects.get(name="Standard").pk,
            "manager": org.manager.pk,
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
        },
    )
    assert response["Location"] == reverse("web:users")
    nina = User.objects.get(email="nina@crmail.test")
    assert nina.manager == org.manager and nina.is_active
    signed_in = client.post(
        reverse("web:login"),
        {"username": "nina@crmail.test", "password": "a long enough passphrase"},
    )
    assert signed_in.status_code == 302


def test_new_user_errors_name_the_fields(org, client_for):
    response = client_for(org.admin).post(
        reverse("web:user_create"),
        {
            "name": "",
            "email": "rep@crmail.test",
            "role": "",
            "profile": "424242",
            "password1": "short",
            "password2": "other",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'href="#id_name">Name</a>: This field is required.' in body
    assert "Email</a>: A user with the email rep@crmail.test already exists." in body
    assert "Role</a>: This field is required." in body
    assert "Profile</a>: Select a valid choice." in body
    assert "Password again</a>: The two passwords differ." in body
    assert User.objects.count() == 5


def test_a_weak_password_is_refused(org, client_for):
    response = client_for(org.admin).post(
        reverse("web:user_create"),
        {
            "name": "Weak",
            "email": "weak@crmail.test",
            "role": Role.objects.get(name="Manager").pk,
            "profile": Profile.objects.get(name="Standard").pk,
            "password1": "password",
            "password2": "password",
        },
    )
    assert "Password</a>: This password is too common." in response.content.decode()


def test_admin_edits_and_deactivates_then_reactivates_a_user(org, client_for):
    client = client_for(org.admin)
    response = client.post(
        reverse("web:user_edit", args=[org.rep.pk]),
        {
            "name": "Rex Renamed",
            "email": "rep@crmail.test",
            "role": org.rep.role_id,
            "profile": org.rep.profile_id,
            "manager": org.manager.pk,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    org.rep.refresh_from_db()
    assert org.rep.name == "Rex Renamed"

    client.post(reverse("web:user_set_active", args=[org.rep.pk]), {"active": "0"})
    org.rep.refresh_from_db()
    assert not org.rep.is_active and org.rep.deactivated_at is not None
    page = client.get(reverse("web:users")).content.decode()
    assert "Deactivated" in page and "Reactivate" in page

    client.post(reverse("web:user_set_active", args=[org.rep.pk]), {"active": "1"})
    org.rep.refresh_from_db()
    assert org.rep.is_active and org.rep.deactivated_at is None


def test_an_admin_cannot_deactivate_themselves(org, client_for):
    client = client_for(org.admin)
    response = client.post(
        reverse("web:user_set_active", args=[org.admin.pk]), {"active": "0"}, follow=True
    )
    assert "You cannot deactivate yourself." in response.content.decode()
    org.admin.refresh_from_db()
    assert org.admin.is_active


def test_roles_page_shows_the_hierarchy(org, client_for):
    body = client_for(org.admin).get(reverse("web:roles")).content.decode()
    ceo, manager, rep = (
        body.index(f">{n}</a>") for n in ("CEO", "Manager", "Sales Representative")
    )
    assert ceo < manager < rep
    # Manager sits in a list nested inside CEO's item.
    between = body[ceo:manager]
    assert '<ul class="tree">' in between


def test_create_a_role_below_another(org, client_for):
    manager = Role.objects.get(name="Manager")
    response = client_for(org.admin).post(
        reverse("web:role_create"), {"name": "Intern", "parent": manager.pk}
    )
    assert response.status_code == 302
    intern = Role.objects.get(name="Intern")
    assert intern.parent == manager and intern.path.startswith(manager.path)


def test_a_role_cannot_report_to_a_role_below_it(org, client_for):
    ceo = Role.objects.get(name="CEO")
    rep = Role.objects.get(name="Sales Representative")
    response = client_for(org.admin).post(
        reverse("web:role_edit", args=[ceo.pk]), {"name": "CEO", "parent": rep.pk}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Reports to</a>: CEO cannot report to Sales Representative" in body
    ceo.refresh_from_db()
    assert ceo.parent is None


def test_duplicate_role_names_are_refused(org, client_for):
    response = client_for(org.admin).post(reverse("web:role_create"), {"name": "manager"})
    assert "A role named &#x27;manager&#x27; already exists." in response.content.decode()


def test_create_and_edit_a_group(org, client_for):
    client = client_for(org.admin)
    manager_role = Role.objects.get(name="Manager")
    response = client.post(
        reverse("web:group_create"),
        {"name": "Key accounts", "users": [org.rep.pk, org.peer.pk], "roles": [manager_role.pk]},
    )
    assert response.status_code == 302
    group = Group.objects.get(name="Key accounts")
    assert group.member_ids() == {org.rep.pk, org.peer.pk, org.manager.pk}
    client.post(
        reverse("web:group_edit", args=[group.pk]),
        {"name": "Key accounts", "users": [org.rep.pk]},
    )
    assert Group.objects.get(pk=group.pk).member_ids() == {org.rep.pk}
    assert "Key accounts" in client.get(reverse("web:groups")).content.decode()

    clash = client.post(reverse("web:group_create"), {"name": "KEY ACCOUNTS"})
    assert "A group named &#x27;KEY ACCOUNTS&#x27; already exists." in clash.content.decode()

    assert client_for(org.rep).post(reverse("web:group_remove", args=[group.pk])).status_code == 403
    removed = client.post(reverse("web:group_remove", args=[group.pk]), follow=True)
    assert "The group Key accounts was removed" in removed.content.decode()
    assert not Group.objects.filter(pk=group.pk).exists()


def test_a_group_member_id_past_the_databases_integers_is_refused_in_words(org, client_for):
    """A tampered form (an id no database integer holds) is a choice that is not there,
    not a server error."""
    response = client_for(org.admin).post(
        reverse("web:group_create"), {"name": "Key accounts", "users": [str(2**70), org.rep.pk]}
    )
    assert response.status_code == 200
    assert "is not one of the available choices" in response.context["form"].errors["users"][0]
    assert not Group.objects.filter(name="Key accounts").exists()


def test_a_role_cannot_be_moved_below_itself_on_its_page(org, client_for):
    manager, rep = Role.objects.get(name="Manager"), Role.objects.get(name="Sales Representative")
    response = client_for(org.admin).post(
        reverse("web:role_edit", args=[manager.pk]), {"name": "Manager", "parent": rep.pk}
    )
    assert response.status_code == 200
    assert "a role cannot report to itself or to a role below it" in response.content.decode()
    manager.refresh_from_db()
    assert manager.parent.name == "CEO"


def test_access_defaults_change_who_sees_records(org, client_for):
    contact = f.contact(org.rep, last_name="Shared")
    url = reverse("web:record_detail", args=["contacts", contact.pk])
    assert client_for(org.peer).get(url).status_code == 404
    data = {m: AccessLevel.PRIVATE for m in ("leads", "accounts", "deals")}
    response = client_for(org.admin).post(
        reverse("web:access_defaults"), {**data, "contacts": AccessLevel.PUBLIC_READ}
    )
    assert response.status_code == 302
    assert ModuleDefault.objects.get(module="contacts").level == AccessLevel.PUBLIC_READ
    assert client_for(org.peer).get(url).status_code == 200


def test_access_defaults_refuse_unknown_levels(org, client_for):
    response = client_for(org.admin).post(reverse("web:access_defaults"), {"contacts": "everyone"})
    assert response.status_code == 200
    assert "Contacts</a>: Select a valid choice." in response.content.decode()
