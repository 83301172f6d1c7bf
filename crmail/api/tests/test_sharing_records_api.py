"""``/sharing/me/records`` and ``/sharing/{user_id}/records``: custom mail sharing, record
by record (SPEC F5)."""

from __future__ import annotations

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.linking.models import Link
from crmail.people.models import ModuleDefault
from crmail.sharing import actions
from crmail.sharing.models import SharedRecord
from crmail.web.tests.mail_samples import deliver, text_message
from tests import factories as f

pytestmark = pytest.mark.django_db

VENDOR = "ada@vendor.example"  # the sender of mail_samples.text_message


@pytest.fixture
def scene(org, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """Contacts readable by everyone; the rep (custom mode) synced a message from Ada, which
    linking put on her contact."""
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    actions.set_sharing(None, org.rep, mode="custom")
    ada = f.contact(org.rep, VENDOR, first_name="Ada", last_name="Vendor")
    with django_capture_on_commit_callbacks(execute=True):
        synced = deliver(org.rep, text_message("Our offer"))
    assert Link.objects.filter(message=synced, module="contacts", record_id=ada.pk).exists()
    return org, ada, synced


def email_ids(viewer, contact) -> set[int]:  # type: ignore[no-untyped-def]
    response = ApiClient(viewer).get(f"/contacts/{contact.pk}/emails")
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["items"]}


def test_sharing_a_contact_shows_the_users_synced_mail_to_colleagues_until_stopped(scene):
    org, ada, synced = scene
    api = ApiClient(org.rep)
    assert synced.pk in email_ids(org.rep, ada)
    assert synced.pk not in email_ids(org.peer, ada)

    shared = api.send("PUT", f"/sharing/me/records/contacts/{ada.pk}")
    assert shared.status_code == 200, shared.content
    assert shared.json() == {
        "module": "contacts",
        "record_id": ada.pk,
        "shared": True,
        "changed": True,
        "in_effect": True,
    }
    assert synced.pk in email_ids(org.peer, ada)
    assert synced.pk in email_ids(org.manager, ada)
    again = api.send("PUT", f"/sharing/me/records/contacts/{ada.pk}").json()
    assert again["changed"] is False

    listed = api.get("/sharing/me/records").json()
    assert listed["count"] == 1 and listed["hidden"] == 0 and listed["mode"] == "custom"
    (item,) = listed["items"]
    assert item["module"] == "contacts" and item["record_id"] == ada.pk
    assert item["name"] == "Ada Vendor" and item["url"] == f"/contacts/{ada.pk}/"
    assert item["shared_at"]

    stopped = api.delete(f"/sharing/me/records/contacts/{ada.pk}")
    assert stopped.status_code == 204
    assert synced.pk not in email_ids(org.peer, ada)
    assert api.get("/sharing/me/records").json()["count"] == 0
    assert api.delete(f"/sharing/me/records/contacts/{ada.pk}").status_code == 204  # no-op


def test_a_choice_outside_custom_mode_is_kept_but_not_in_effect(scene):
    org, ada, synced = scene
    actions.set_sharing(None, org.rep, mode="public", excluded_domains=["vendor.example"])
    body = ApiClient(org.rep).send("PUT", f"/sharing/me/records/contacts/{ada.pk}").json()
    assert body["in_effect"] is False
    assert synced.pk not in email_ids(org.peer, ada)  # public, but the domain is excluded
    listed = ApiClient(org.rep).get("/sharing/me/records").json()
    assert listed["mode"] == "public" and listed["count"] == 1
    actions.set_sharing(None, org.rep, mode="custom")
    assert synced.pk in email_ids(org.peer, ada)


def test_unknown_modules_and_records_the_user_cannot_see(scene):
    org, ada, _ = scene
    api = ApiClient(org.rep)
    bad_module = api.send("PUT", f"/sharing/me/records/people/{ada.pk}")
    assert bad_module.status_code == 422 and fields(bad_module) == {"module"}
    assert api.send("PUT", "/sharing/me/records/contacts/999999").status_code == 404
    hidden = f.lead(org.manager)  # leads stay private: the rep cannot see the manager's
    response = api.send("PUT", f"/sharing/me/records/leads/{hidden.pk}")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}
    assert api.delete(f"/sharing/me/records/leads/{hidden.pk}").status_code == 404
    assert api.send("PUT", "/sharing/me/records/contacts/0").status_code == 422
    assert not SharedRecord.objects.exists()


def test_a_locked_setting_answers_403(scene):
    org, ada, _ = scene
    actions.share_record(None, org.rep, "contacts", ada.pk)
    actions.set_locked(None, org.rep, True)
    api = ApiClient(org.rep)
    response = api.delete(f"/sharing/me/records/contacts/{ada.pk}")
    assert response.status_code == 403 and "locked" in response.json()["detail"]
    assert api.send("PUT", f"/sharing/me/records/contacts/{ada.pk}").status_code == 403
    assert SharedRecord.objects.filter(record_id=ada.pk).exists()
    assert api.get("/sharing/me/records").json()["count"] == 1  # reading is fine
    # Administrators still change it.
    admin = ApiClient(org.admin)
    assert admin.delete(f"/sharing/{org.rep.pk}/records/contacts/{ada.pk}").status_code == 204
    assert not SharedRecord.objects.exists()


def test_the_list_names_only_records_the_reader_may_see(scene):
    org, ada, _ = scene
    acme = f.account(org.rep, "Acme")
    actions.share_record(None, org.rep, "contacts", ada.pk)
    actions.share_record(None, org.rep, "accounts", acme.pk)
    mine = ApiClient(org.rep).get("/sharing/me/records").json()
    assert [(i["module"], i["name"]) for i in mine["items"]] == [
        ("contacts", "Ada Vendor"),
        ("accounts", "Acme"),
    ]
    assert (
        ApiClient(org.rep)
        .get("/sharing/me/records", {"limit": 1, "offset": 1})
        .json()["items"][0]["name"]
        == "Acme"
    )
    # A record the rep can no longer see (here, the manager's lead): counted, not named.
    lead = f.lead(org.manager)
    SharedRecord.objects.create(setting_id=org.rep.pk, module="leads", record_id=lead.pk)
    mine = ApiClient(org.rep).get("/sharing/me/records").json()
    assert mine["count"] == 2 and mine["hidden"] == 1
    everything = ApiClient(org.admin).get(f"/sharing/{org.rep.pk}/records").json()
    assert everything["count"] == 3 and everything["hidden"] == 0


def test_admins_share_and_stop_for_a_user(scene):
    org, ada, synced = scene
    admin = ApiClient(org.admin)
    response = admin.send("PUT", f"/sharing/{org.rep.pk}/records/contacts/{ada.pk}")
    assert response.status_code == 200 and response.json()["changed"] is True
    assert synced.pk in email_ids(org.peer, ada)
    # A record the user cannot see cannot be shared for them: 422 naming record_id.
    lead = f.lead(org.manager)
    refused = admin.send("PUT", f"/sharing/{org.rep.pk}/records/leads/{lead.pk}")
    assert refused.status_code == 422 and fields(refused) == {"record_id"}
    assert admin.send("PUT", f"/sharing/999999/records/contacts/{ada.pk}").status_code == 404
    assert admin.delete(f"/sharing/{org.rep.pk}/records/contacts/{ada.pk}").status_code == 204
    assert synced.pk not in email_ids(org.peer, ada)


def test_others_may_not_read_or_change_a_colleagues_records(scene):
    org, ada, _ = scene
    actions.share_record(None, org.rep, "contacts", ada.pk)
    peer = ApiClient(org.peer)
    assert peer.get(f"/sharing/{org.rep.pk}/records").status_code == 403
    put = peer.send("PUT", f"/sharing/{org.rep.pk}/records/contacts/{ada.pk}")
    assert put.status_code == 403
    assert peer.delete(f"/sharing/{org.rep.pk}/records/contacts/{ada.pk}").status_code == 403
    assert SharedRecord.objects.filter(record_id=ada.pk).exists()
    # A user may use the id form for themselves.
    own = ApiClient(org.rep).get(f"/sharing/{org.rep.pk}/records").json()
    assert own["count"] == 1


def test_the_paths_are_documented(scene):
    paths = ApiClient(scene[0].rep).get("/openapi.json").json()["paths"]
    assert set(paths["/api/v1/sharing/me/records/{module}/{record_id}"]) == {"put", "delete"}
    assert "get" in paths["/api/v1/sharing/{user_id}/records"]
