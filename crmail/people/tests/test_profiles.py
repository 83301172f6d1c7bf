"""Profiles edited by administrators: the writer's checks, the pages."""

from __future__ import annotations

import pytest

from crmail.people import actions
from crmail.people.actions import Invalid, NotAllowed
from crmail.people.models import Profile

pytestmark = pytest.mark.django_db


def fields(exc: Invalid) -> set[str]:
    return {e["field"] for e in exc.errors}


def test_a_profile_is_added_with_only_the_actions_given(org):
    made = actions.save_profile(
        None,
        {
            "name": " Support ",
            "description": "Reads everything, edits contacts",
            "mail_integration": False,
            "permissions": {"contacts": ["edit", "view"], "leads": ["view"]},
        },
        by=org.admin,
    )
    assert made.name == "Support" and not made.mail_integration and not made.is_admin
    assert made.permissions == {
        "leads": ["view"],
        "contacts": ["view", "edit"],
        "accounts": [],
        "deals": [],
    }
    assert made.allows("contacts", "edit") and not made.allows("deals", "view")


def test_every_problem_is_named(org):
    with pytest.raises(Invalid) as caught:
        actions.save_profile(
            None,
            {"name": "standard", "permissions": {"invoices": ["view"], "deals": ["fly"]}},
            by=org.admin,
        )
    assert fields(caught.value) == {"name", "permissions"}
    assert "A profile named 'standard' already exists." in str(caught.value)
    with pytest.raises(NotAllowed):
        actions.save_profile(None, {"name": "Mine"}, by=org.rep)


def test_the_last_administrators_profile_keeps_administering(org):
    admin_profile = Profile.objects.get(name="Administrator")
    type(org.admin).objects.filter(pk=org.admin.pk).update(is_superuser=False)
    with pytest.raises(Invalid) as caught:
        actions.save_profile(admin_profile, {"is_admin": False}, by=org.admin)
    assert fields(caught.value) == {"is_admin"}
    admin_profile.refresh_from_db()
    assert admin_profile.is_admin


def test_the_pages_list_add_and_edit_profiles(client, org):
    client.force_login(org.rep)
    assert client.get("/settings/profiles/").status_code == 403
    client.force_login(org.admin)
    listing = client.get("/settings/profiles/").content.decode()
    assert "Standard" in listing and "Administrator" in listing
    form = {"name": "Readers", "description": "", "leads_view": "on", "deals_view": "on"}
    answer = client.post("/settings/profiles/new/", form)
    assert answer.status_code == 302
    readers = Profile.objects.get(name="Readers")
    assert readers.permissions["leads"] == ["view"] and readers.permissions["contacts"] == []
    assert not readers.mail_integration
    clash = client.post(f"/settings/profiles/{readers.pk}/", {**form, "name": "STANDARD"})
    assert clash.status_code == 200
    assert "A profile named &#x27;STANDARD&#x27; already exists." in clash.content.decode()
    client.post(f"/settings/profiles/{readers.pk}/", {**form, "contacts_edit": "on"})
    readers.refresh_from_db()
    assert readers.permissions["contacts"] == ["edit"]
