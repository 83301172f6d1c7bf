"""``/sharing``: users read and change their own mail sharing, administrators everyone's."""

from __future__ import annotations

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.people.models import Group
from crmail.sharing import actions
from crmail.sharing.queries import summary

pytestmark = pytest.mark.django_db


def test_admins_list_every_user_setting_with_counts(org):
    actions.set_sharing(None, org.peer, mode="private")
    actions.set_sharing(None, org.rep, excluded_domains=["crmail.test", "partner.example"])
    org.outsider_manager.is_active = False
    org.outsider_manager.save()
    response = ApiClient(org.admin).get("/sharing")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 5
    items = {i["user"]["email"]: i for i in body["items"]}
    assert items["rep@crmail.test"]["excluded_domain_count"] == 2
    assert items["rep@crmail.test"]["excluded_domains"] == ["crmail.test", "partner.example"]
    assert items["rep@crmail.test"]["shared_with"] == "everyone who can access the record"
    assert items["peer@crmail.test"]["mode"] == "private"
    assert body["items"][-1]["user"] == {
        "id": org.outsider_manager.pk,
        "name": "Eve East",
        "email": "east@crmail.test",
        "is_active": False,
    }
    only_inactive = ApiClient(org.admin).get("/sharing", {"is_active": "false"}).json()
    assert [i["user"]["email"] for i in only_inactive["items"]] == ["east@crmail.test"]


def test_others_may_not_list_or_read_other_settings(org):
    api = ApiClient(org.manager)
    listed = api.get("/sharing")
    assert listed.status_code == 403
    assert "administrators" in listed.json()["detail"]
    assert api.get(f"/sharing/{org.rep.pk}").status_code == 403
    assert api.patch(f"/sharing/{org.rep.pk}", {"mode": "private"}).status_code == 403
    assert summary(org.rep).mode == "public"
    assert api.get("/sharing/999999").status_code == 404


def test_a_user_reads_and_changes_their_own_setting(org):
    api = ApiClient(org.rep)
    me = api.get("/sharing/me").json()
    assert me["user"]["id"] == org.rep.pk
    assert (me["mode"], me["audience"]) == ("public", "everyone")
    assert me["excluded_domains"] == ["crmail.test"]
    assert me["suggested_excluded_domains"] == ["crmail.test"]
    assert me["locked"] is False
    assert api.get(f"/sharing/{org.rep.pk}").json() == me

    group = Group.objects.create(name="Support")
    changed = api.patch(
        "/sharing/me",
        {"share_with_user_ids": [org.peer.pk], "share_with_group_ids": [group.pk]},
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["audience"] == "chosen"  # chosen people make the audience chosen
    assert [u["email"] for u in body["share_with_users"]] == ["peer@crmail.test"]
    assert body["share_with_groups"] == [{"id": group.pk, "name": "Support"}]
    assert body["shared_with"] == "group Support, peer@crmail.test"
    # Giving the groups only keeps the chosen users.
    again = api.patch(f"/sharing/{org.rep.pk}", {"share_with_group_ids": []}).json()
    assert [u["email"] for u in again["share_with_users"]] == ["peer@crmail.test"]
    assert again["share_with_groups"] == []
    private = api.patch("/sharing/me", {"mode": "private", "excluded_domains": []}).json()
    assert (private["mode"], private["excluded_domain_count"]) == ("private", 0)
    assert summary(org.rep).mode == "private"


def test_an_admin_changes_and_locks_a_user_setting(org):
    admin = ApiClient(org.admin)
    changed = admin.patch(
        f"/sharing/{org.rep.pk}",
        {"mode": "public", "audience": "chosen", "share_with_user_ids": [org.peer.pk]},
    )
    assert changed.status_code == 200, changed.content
    assert summary(org.rep).shared_with == "peer@crmail.test"

    locked = admin.post(f"/sharing/{org.rep.pk}/lock", {"locked": True})
    assert locked.status_code == 200 and locked.json()["locked"] is True
    rep = ApiClient(org.rep)
    refused = rep.patch("/sharing/me", {"mode": "private"})
    assert refused.status_code == 403
    assert "locked" in refused.json()["detail"]
    assert rep.patch(f"/sharing/{org.rep.pk}", {"mode": "private"}).status_code == 403
    assert summary(org.rep).mode == "public"
    # Administrators still change it; then unlock it.
    assert admin.patch(f"/sharing/{org.rep.pk}", {"mode": "custom"}).json()["mode"] == "custom"
    assert admin.post(f"/sharing/{org.rep.pk}/lock", {"locked": False}).json()["locked"] is False
    assert rep.patch("/sharing/me", {"mode": "private"}).status_code == 200


def test_only_admins_lock(org):
    response = ApiClient(org.rep).post(f"/sharing/{org.rep.pk}/lock", {"locked": True})
    assert response.status_code == 403
    assert not summary(org.rep).locked
    assert ApiClient(org.admin).post("/sharing/999999/lock", {"locked": True}).status_code == 404
    assert fields(ApiClient(org.admin).post(f"/sharing/{org.rep.pk}/lock", {})) == {"locked"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "secret"}, "mode"),
        ({"audience": "nobody"}, "audience"),
        ({"excluded_domains": ["not a domain"]}, "excluded_domains"),
        ({"excluded_domains": "acme.com"}, "excluded_domains"),
        ({"excluded_domains": ["a\x00b.com"]}, "excluded_domains"),
        ({"excluded_domains": ["a" * 300 + ".com"]}, "excluded_domains"),
        ({"audience": "chosen"}, "share_with_user_ids"),
        ({"share_with_user_ids": [999999]}, "share_with_user_ids"),
        ({"share_with_user_ids": [0]}, "share_with_user_ids"),
        ({"share_with_group_ids": [999999]}, "share_with_group_ids"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_answers_422_naming_the_field(org, body, field):
    before = summary(org.rep)
    response = ApiClient(org.rep).patch("/sharing/me", body)
    assert response.status_code == 422, response.content
    assert fields(response) == {field}
    assert all(e["message"] for e in response.json()["detail"])
    assert summary(org.rep) == before


def test_sharing_with_yourself_or_a_deactivated_user_is_refused(org):
    org.peer.is_active = False
    org.peer.save()
    api = ApiClient(org.rep)
    for user in (org.rep, org.peer):
        response = api.patch("/sharing/me", {"share_with_user_ids": [user.pk]})
        assert response.status_code == 422
        assert fields(response) == {"share_with_user_ids"}


def test_sign_in_is_required(org):
    assert ApiClient().get("/sharing/me").status_code == 401


def test_the_endpoints_are_described(org):
    schema = ApiClient(org.rep).get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/v1/sharing", "/api/v1/sharing/me", "/api/v1/sharing/{user_id}/lock"):
        assert path in paths, path
    patch = paths["/api/v1/sharing/{user_id}"]["patch"]
    assert {"403", "422"} <= set(patch["responses"])
    props = schema["components"]["schemas"]["SharingPatch"]["properties"]
    assert "description" in props["excluded_domains"]
