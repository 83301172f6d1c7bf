"""Users (everyone reads, administrators change) and pipelines (read-only)."""

from __future__ import annotations

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.people.models import ApiToken, Profile, Role, User
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_any_user_lists_and_reads_users_without_passwords(org):
    api = ApiClient(org.rep)
    listed = api.get("/users").json()
    assert listed["count"] == 5
    emails = [u["email"] for u in listed["items"]]
    assert emails == [
        "admin@crmail.test",
        "east@crmail.test",
        "manager@crmail.test",
        "peer@crmail.test",
        "rep@crmail.test",
    ]
    rep = api.get(f"/users/{org.rep.pk}").json()
    assert rep["name"] == "Rex Rep"
    assert rep["role"] == {"id": org.rep.role_id, "name": "Sales Representative"}
    assert rep["manager_id"] == org.manager.pk
    assert rep["is_active"] is True and rep["is_admin"] is False
    assert "password" not in rep and "password" not in str(listed)


def test_users_can_be_searched_and_filtered_by_activity(org):
    org.peer.is_active = False
    org.peer.save()
    api = ApiClient(org.rep)
    assert [u["name"] for u in api.get("/users", {"q": "mia"}).json()["items"]] == ["Mia Manager"]
    inactive = api.get("/users", {"is_active": "false"}).json()["items"]
    assert [u["email"] for u in inactive] == ["peer@crmail.test"]


def test_an_admin_adds_a_user_who_can_then_sign_in(org, client):
    standard = Profile.objects.get(name="Standard")
    role = Role.objects.get(name="Sales Representative")
    response = ApiClient(org.admin).post(
        "/users",
        {
            "email": "New.Person@Crmail.test",
            "name": "Nia New",
            "password": "a long and unusual passphrase",
            "role_id": role.pk,
            "profile_id": standard.pk,
            "manager_id": org.manager.pk,
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "new.person@crmail.test"
    assert body["profile"] == {"id": standard.pk, "name": "Standard"}
    assert "password" not in body
    assert client.login(username="new.person@crmail.test", password="a long and unusual passphrase")


def test_adding_a_user_refuses_bad_input_naming_the_field(org):
    api = ApiClient(org.admin)
    assert fields(api.post("/users", {"email": "nope", "name": "X"})) == {"email"}
    taken = api.post("/users", {"email": "REP@crmail.test", "name": "X"})
    assert taken.status_code == 422 and fields(taken) == {"email"}
    weak = api.post("/users", {"email": "w@crmail.test", "name": "W", "password": "123"})
    assert fields(weak) == {"password"}
    assert fields(api.post("/users", {"email": "r@crmail.test", "name": "R", "role_id": 9999})) == {
        "role_id"
    }
    assert fields(api.post("/users", {"email": "n@crmail.test", "name": ""})) == {"name"}
    org.peer.is_active = False
    org.peer.save()
    gone = api.post("/users", {"email": "m@crmail.test", "name": "M", "manager_id": org.peer.pk})
    assert fields(gone) == {"manager_id"}
    assert not User.objects.filter(email__in=["w@crmail.test", "r@crmail.test"]).exists()


def test_a_user_added_without_role_or_profile_gets_the_defaults(org):
    body = ApiClient(org.admin).post("/users", {"email": "d@crmail.test", "name": "Di"}).json()
    assert body["role"]["name"] == "Sales Representative"
    assert body["profile"]["name"] == "Standard"
    assert not User.objects.get(email="d@crmail.test").has_usable_password()


@pytest.mark.parametrize("who", ["manager", "rep"])
def test_only_admins_add_change_or_deactivate_users(org, who):
    api = ApiClient(getattr(org, who))
    for response in (
        api.post("/users", {"email": "x@crmail.test", "name": "X"}),
        api.patch(f"/users/{org.peer.pk}", {"name": "Renamed"}),
        api.post(f"/users/{org.peer.pk}/deactivate"),
    ):
        assert response.status_code == 403
        assert "administrators" in response.json()["detail"]
    org.peer.refresh_from_db()
    assert org.peer.name == "Pia Peer" and org.peer.is_active


def test_an_admin_changes_a_user(org):
    east = Role.objects.get(name="Manager East")
    api = ApiClient(org.admin)
    response = api.patch(
        f"/users/{org.rep.pk}",
        {"name": "Rex Moved", "role_id": east.pk, "manager_id": org.outsider_manager.pk},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Rex Moved"
    assert body["role"] == {"id": east.pk, "name": "Manager East"}
    assert body["manager_id"] == org.outsider_manager.pk
    assert body["email"] == "rep@crmail.test"
    assert fields(api.patch(f"/users/{org.rep.pk}", {"manager_id": org.rep.pk})) == {"manager_id"}
    assert fields(api.patch(f"/users/{org.rep.pk}", {"password": "x"})) == {"password"}


def test_a_deactivated_user_loses_api_access_and_keeps_their_records(org):
    contact = f.contact(org.rep)
    rep_api = ApiClient(org.rep)
    assert rep_api.get("/contacts").status_code == 200
    response = ApiClient(org.admin).post(f"/users/{org.rep.pk}/deactivate")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert rep_api.get("/contacts").status_code == 401
    assert ApiToken.authenticate(rep_api.token) is None
    org.rep.refresh_from_db()
    assert org.rep.deactivated_at is not None
    assert ApiClient(org.admin).get(f"/contacts/{contact.pk}").json()["owner"]["id"] == org.rep.pk

    again = ApiClient(org.admin).patch(f"/users/{org.rep.pk}", {"is_active": True})
    assert again.json()["is_active"] is True
    assert rep_api.get("/contacts").status_code == 200


def test_an_admin_cannot_deactivate_themselves(org):
    response = ApiClient(org.admin).patch(f"/users/{org.admin.pk}", {"is_active": False})
    assert fields(response) == {"is_active"}
    org.admin.refresh_from_db()
    assert org.admin.is_active


def test_pipelines_list_their_stages_in_order(org):
    api = ApiClient(org.rep)
    listed = api.get("/pipelines").json()
    assert listed["count"] == 1
    pipeline = listed["items"][0]
    assert pipeline["is_default"] is True
    assert [s["name"] for s in pipeline["stages"]][:2] == ["Qualification", "Needs Analysis"]
    assert pipeline["stages"][-1] == {
        "id": pipeline["stages"][-1]["id"],
        "name": "Closed Lost",
        "position": 6,
        "probability": 0,
        "kind": "lost",
    }
    assert api.get(f"/pipelines/{pipeline['id']}").json() == pipeline
    assert api.post("/pipelines", {"name": "X"}).status_code == 405
