"""``/api/v1/tasks``: one's own tasks and a record's, added, changed, ticked and deleted
through the writers, with the answers a client can act on."""

from __future__ import annotations

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.crm.models import Task
from crmail.events.models import Event
from crmail.people.models import AccessLevel, ModuleDefault
from crmail.sharing.tests.build import message
from tests import factories as f

pytestmark = pytest.mark.django_db


def new(client: ApiClient, record, **body):  # type: ignore[no-untyped-def]
    payload = {"module": type(record).MODULE, "record_id": record.pk, "title": "Call back"}
    return client.post("/tasks", payload | {"due": "2026-12-10"} | body)


def test_a_task_is_added_read_and_listed_as_mine(org):
    rep = ApiClient(org.rep)
    contact = f.contact(org.rep, "ann@client.example", first_name="Ann", last_name="Lee")
    made = new(rep, contact, notes="About the fleet")
    assert made.status_code == 201, made.content
    task = made.json()
    assert task["title"] == "Call back" and task["due"] == "2026-12-10"
    assert task["owner"]["id"] == org.rep.pk and task["created_by"]["id"] == org.rep.pk
    assert (task["module"], task["record_id"], task["record_name"]) == (
        "contacts",
        contact.pk,
        "Ann Lee",
    )
    assert task["record_url"].endswith(f"/contacts/{contact.pk}/")
    assert not task["done"] and task["done_at"] is None and task["message_id"] is None
    assert rep.get(f"/tasks/{task['id']}").json() == task
    listed = rep.get("/tasks").json()
    assert (listed["count"], listed["limit"], listed["offset"]) == (1, 50, 0)
    assert listed["items"] == [task]


def test_a_records_tasks_and_another_users_are_listed_as_far_as_they_may_be_seen(org):
    contact = f.contact(org.rep)
    mine = new(ApiClient(org.rep), contact).json()
    theirs = new(ApiClient(org.manager), contact, owner_id=org.manager.pk).json()
    manager = ApiClient(org.manager)
    on_record = manager.get("/tasks", {"module": "contacts", "record_id": contact.pk}).json()
    assert [t["id"] for t in on_record["items"]] == [mine["id"], theirs["id"]]
    assert [t["id"] for t in manager.get("/tasks").json()["items"]] == [theirs["id"]]
    by_owner = manager.get("/tasks", {"owner": org.rep.pk}).json()["items"]
    assert [t["id"] for t in by_owner] == [mine["id"]]
    peer = ApiClient(org.peer)
    assert peer.get("/tasks", {"module": "contacts", "record_id": contact.pk}).json()["count"] == 0
    assert peer.get(f"/tasks/{mine['id']}").status_code == 404
    half = manager.get("/tasks", {"module": "contacts"})
    assert half.status_code == 422 and fields(half) == {"record_id"}


def test_ticking_editing_and_deleting_follow_the_rules(org):
    contact = f.contact(org.rep)
    task = new(ApiClient(org.rep), contact).json()
    manager = ApiClient(org.manager)
    ticked = manager.patch(f"/tasks/{task['id']}", {"done": True})
    assert ticked.status_code == 200 and ticked.json()["done"] and ticked.json()["done_at"]
    changed = ApiClient(org.rep).patch(
        f"/tasks/{task['id']}", {"title": "Send the quote", "due": "2026-12-12", "done": False}
    )
    body = changed.json()
    assert (body["title"], body["due"], body["done"]) == ("Send the quote", "2026-12-12", False)
    assert Event.objects.filter(kind="task.updated").count() == 3
    ModuleDefault.objects.update_or_create(
        module="contacts", defaults={"level": AccessLevel.PUBLIC_READ}
    )
    peer = ApiClient(org.peer)
    refused = peer.patch(f"/tasks/{task['id']}", {"done": True})
    assert refused.status_code == 403
    assert peer.delete(f"/tasks/{task['id']}").status_code == 403
    assert manager.delete(f"/tasks/{task['id']}").status_code == 204
    assert not Task.objects.exists()


def test_bad_input_names_its_field(org):
    rep = ApiClient(org.rep)
    contact = f.contact(org.rep)
    assert fields(new(rep, contact, title="")) == {"title"}
    assert fields(new(rep, contact, due="tomorrow")) == {"due"}
    assert fields(new(rep, contact, owner_id=10**9)) == {"owner_id"}
    assert fields(new(rep, contact, owner_id=org.peer.pk)) == {"owner_id"}  # cannot see it
    assert fields(new(rep, contact, module="tickets")) == {"module"}
    assert fields(new(rep, contact, extra=1)) == {"extra"}
    hidden = f.contact(org.outsider_manager)
    assert fields(new(rep, hidden)) == {"record_id"}
    assert fields(new(rep, contact, message_id=10**9)) == {"message_id"}
    task = new(rep, contact).json()
    assert fields(rep.patch(f"/tasks/{task['id']}", {"title": None})) == {"title"}
    assert rep.patch(f"/tasks/{task['id']}", {"done": "yes"}).status_code == 422
    ModuleDefault.objects.update_or_create(
        module="contacts", defaults={"level": AccessLevel.PUBLIC_READ}
    )
    assert new(ApiClient(org.peer), contact).status_code == 403  # sees it, may not edit it


def test_a_task_from_mail_names_the_message_only_to_those_who_may_see_it(org):
    contact = f.contact(org.rep, "ann@client.example")
    mail = message("ann@client.example", [org.rep.email], on=[contact], in_mailboxes=[org.rep])
    task = new(ApiClient(org.rep), contact, message_id=mail.pk).json()
    assert task["message_id"] == mail.pk
    from crmail.sharing import actions

    actions.set_sharing(None, org.rep, mode="private")
    seen_by_manager = ApiClient(org.manager).get(f"/tasks/{task['id']}").json()
    assert seen_by_manager["message_id"] is None
