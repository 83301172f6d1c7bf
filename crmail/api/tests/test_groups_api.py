"""``/groups``: everyone reads the groups mail is shared with; administrators change them."""

from __future__ import annotations

import pytest

from crmail.api.tests.conftest import ApiClient
from crmail.people.models import Group, Role
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_administrators_add_change_and_remove_groups_and_others_only_read():
    admin, ann, bob = f.user(admin=True), f.user("ann@example.com"), f.user("bob@example.com")
    manager = Role.objects.get(name="Manager")
    api, rep = ApiClient(admin), ApiClient(ann)

    made = api.post("/groups", {"name": "West", "user_ids": [ann.pk], "role_ids": [manager.pk]})
    assert made.status_code == 201, made.content
    group = made.json()
    assert group["user_ids"] == [ann.pk] and group["role_ids"] == [manager.pk]

    assert rep.get("/groups").json()["items"][0]["name"] == "West"
    assert rep.get(f"/groups/{group['id']}").json()["user_ids"] == [ann.pk]
    refused = rep.patch(f"/groups/{group['id']}", {"name": "Mine"})
    assert refused.status_code == 403 and "administrators" in refused.json()["detail"]

    changed = api.patch(f"/groups/{group['id']}", {"user_ids": [bob.pk], "name": "West coast"})
    assert changed.status_code == 200
    assert changed.json()["user_ids"] == [bob.pk] and changed.json()["role_ids"] == [manager.pk]

    assert api.delete(f"/groups/{group['id']}").status_code == 204
    assert not Group.objects.exists()
    assert api.get(f"/groups/{group['id']}").status_code == 404


def test_unknown_members_and_clashing_names_are_named_in_the_answer():
    admin = f.user(admin=True)
    api = ApiClient(admin)
    api.post("/groups", {"name": "West"})
    answer = api.post("/groups", {"name": "west", "user_ids": [987654], "role_ids": [987654]})
    assert answer.status_code == 422
    fields = {e["field"]: e["message"] for e in answer.json()["detail"]}
    assert fields.keys() == {"name", "user_ids", "role_ids"}
    assert "987654" in fields["user_ids"] and "already exists" in fields["name"]
    assert Group.objects.count() == 1
