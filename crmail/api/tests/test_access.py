"""The API shows and changes exactly what the access layer allows, and hides the rest."""

from __future__ import annotations

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.crm.models import RECORD_MODELS, Contact, Deal, Stage
from crmail.people import access
from crmail.people.models import ModuleDefault, Profile, full_permissions
from tests import factories as f

pytestmark = pytest.mark.django_db

MAKERS = {
    "contacts": lambda owner: f.contact(owner, f"c{next(f._seq)}@x.example"),
    "leads": lambda owner: f.lead(owner, f"l{next(f._seq)}@x.example"),
    "accounts": lambda owner: f.account(owner),
    "deals": lambda owner: f.deal(owner),
}


def listed_ids(api: ApiClient, resource: str) -> list[int]:
    """Every id the API lists, following the pages."""
    ids: list[int] = []
    offset = 0
    while True:
        page = api.get(f"/{resource}", {"limit": 4, "offset": offset}).json()
        ids += [item["id"] for item in page["items"]]
        offset += 4
        if offset >= page["count"]:
            return ids


def test_manager_sees_and_changes_the_reps_contact(org):
    contact = f.contact(org.rep, "rep.customer@x.example")
    api = ApiClient(org.manager)
    assert contact.pk in listed_ids(api, "contacts")
    assert api.get(f"/contacts/{contact.pk}").json()["email"] == "rep.customer@x.example"
    assert api.patch(f"/contacts/{contact.pk}", {"title": "CFO"}).json()["title"] == "CFO"


def test_rep_gets_404_on_the_managers_contact_exactly_as_on_a_missing_one(org):
    contact = f.contact(org.manager)
    api = ApiClient(org.rep)
    hidden = api.get(f"/contacts/{contact.pk}")
    missing = api.get("/contacts/987654")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == {"detail": "Not found."}
    assert contact.pk not in listed_ids(api, "contacts")


def test_peer_can_neither_read_change_nor_delete_the_reps_contact(org):
    contact = f.contact(org.rep, last_name="Kept")
    api = ApiClient(org.peer)
    assert api.get(f"/contacts/{contact.pk}").status_code == 404
    assert api.patch(f"/contacts/{contact.pk}", {"last_name": "Stolen"}).status_code == 404
    assert api.delete(f"/contacts/{contact.pk}").status_code == 404
    contact.refresh_from_db()
    assert contact.last_name == "Kept"


def test_admin_sees_every_record(org):
    made = {MAKERS["deals"](u).pk for u in (org.rep, org.peer, org.manager, org.outsider_manager)}
    assert set(listed_ids(ApiClient(org.admin), "deals")) == made


def test_public_read_lets_the_peer_read_but_not_change_or_delete(org):
    ModuleDefault.objects.filter(module="contacts").update(level="public_read")
    contact = f.contact(org.rep, last_name="Kept")
    api = ApiClient(org.peer)
    assert api.get(f"/contacts/{contact.pk}").status_code == 200
    assert contact.pk in listed_ids(api, "contacts")
    refused = api.patch(f"/contacts/{contact.pk}", {"last_name": "Changed"})
    assert refused.status_code == 403
    assert refused.json() == {"detail": "You may not edit this record."}
    assert api.delete(f"/contacts/{contact.pk}").status_code == 403
    contact.refresh_from_db()
    assert contact.last_name == "Kept"


def test_public_read_write_lets_the_peer_change_but_still_not_delete(org):
    ModuleDefault.objects.filter(module="accounts").update(level="public_read_write")
    account = f.account(org.rep, "Acme")
    api = ApiClient(org.peer)
    assert api.patch(f"/accounts/{account.pk}", {"industry": "Tools"}).status_code == 200
    assert api.delete(f"/accounts/{account.pk}").status_code == 403
    assert api.get(f"/accounts/{account.pk}").json()["industry"] == "Tools"


def test_a_profile_without_create_refuses_with_403(org):
    profile = org.rep.profile
    profile.pk = None
    profile.name = "No leads"
    profile.permissions = {**profile.permissions, "leads": ["view"]}
    profile.save()
    org.rep.profile = profile
    org.rep.save()
    response = ApiClient(org.rep).post("/leads", {"last_name": "X"})
    assert response.status_code == 403
    assert "create" in response.json()["detail"]


def test_a_deal_cannot_be_attached_to_a_contact_the_user_may_not_see(org):
    hidden = f.contact(org.peer)
    api = ApiClient(org.rep)
    stage_id = Stage.objects.get(pipeline__is_default=True, name="Qualification").pk
    response = api.post("/deals", {"name": "Sneaky", "stage_id": stage_id, "contact_id": hidden.pk})
    assert response.status_code == 422
    assert fields(response) == {"contact_id"}
    # The answer is the same as for a contact that does not exist.
    missing = api.post("/deals", {"name": "Sneaky", "stage_id": stage_id, "contact_id": 987654})
    assert missing.json() == response.json()
    assert not Deal.objects.exists()


def test_a_deal_cannot_be_moved_to_an_account_the_user_may_not_see(org):
    deal = f.deal(org.rep)
    hidden = f.account(org.manager)
    response = ApiClient(org.rep).patch(f"/deals/{deal.pk}", {"account_id": hidden.pk})
    assert response.status_code == 422
    assert fields(response) == {"account_id"}
    deal.refresh_from_db()
    assert deal.account_id is None


def test_a_contact_cannot_be_attached_to_an_account_the_user_may_not_see(org):
    hidden = f.account(org.peer)
    response = ApiClient(org.rep).post("/contacts", {"last_name": "X", "account_id": hidden.pk})
    assert response.status_code == 422
    assert fields(response) == {"account_id"}
    assert not Contact.objects.exists()


@pytest.mark.parametrize("level", ["private", "public_read"])
@pytest.mark.parametrize("resource", ["contacts", "leads", "accounts", "deals"])
def test_lists_and_reads_agree_with_the_access_layer_for_every_user(org, resource, level):
    ModuleDefault.objects.filter(module=resource).update(level=level)
    ceo = f.user("ceo@crmail.test", name="Cy Ceo", role_name="CEO")
    east_rep = f.user("eastrep@crmail.test", name="Ed East", role_name="Rep East")
    blind = f.user("blind@crmail.test", name="Bo Blind", role_name="Manager")
    blind.profile = Profile.objects.create(
        name="Other modules only", permissions={**full_permissions(), resource: []}
    )
    blind.save()
    people = [org.admin, org.manager, org.rep, org.peer, org.outsider_manager, ceo, east_rep]
    people.append(blind)
    for owner in people:
        for _ in range(2):
            MAKERS[resource](owner)
    model = RECORD_MODELS[resource]
    all_ids = set(model.objects.values_list("pk", flat=True))

    for user in people:
        api = ApiClient(user)
        expected = set(access.visible(user, model).values_list("pk", flat=True))
        listed = listed_ids(api, resource)
        assert len(listed) == len(set(listed)), f"{user.name} sees duplicates"
        assert set(listed) == expected, f"{user.name} on {resource} ({level})"
        for pk in all_ids:
            status = api.get(f"/{resource}/{pk}").status_code
            assert status == (200 if pk in expected else 404), (user.name, resource, pk)
    # The mix is real: someone sees everything and someone less, down to nothing.
    seen = [set(access.visible(u, model).values_list("pk", flat=True)) for u in people]
    assert any(s == all_ids for s in seen)
    assert set() in seen
    assert level != "private" or any(set() < s < all_ids for s in seen)
