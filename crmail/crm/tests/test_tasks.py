"""Tasks on records: who adds, sees and changes them, what is checked, what is recorded."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from crmail.crm import actions
from crmail.crm import task_actions as tasks
from crmail.crm.models import Task
from crmail.crm.task_queries import open_tasks, record_names, visible_tasks
from crmail.events.models import Event
from crmail.people.models import AccessLevel, ModuleDefault
from tests import factories as f

pytestmark = pytest.mark.django_db

DUE = date(2026, 12, 10)


def fields(err: actions.RecordInvalid) -> set[str]:
    return {e["field"] for e in err.errors}


def opened(module: str, level: str) -> None:
    ModuleDefault.objects.update_or_create(module=module, defaults={"level": level})


def on_record(user, record):  # type: ignore[no-untyped-def]
    return list(visible_tasks(user).filter(module=record.MODULE, record_id=record.pk))


def add(actor, record, owner=None, **extra):  # type: ignore[no-untyped-def]
    return tasks.create_task(
        actor=actor,
        module=type(record).MODULE,
        record_id=record.pk,
        title=extra.pop("title", "Call back"),
        due=extra.pop("due", DUE),
        owner=owner or actor,
        **extra,
    )


def test_a_task_is_put_on_a_record_and_recorded(org):
    contact = f.contact(org.rep, "ann@client.example")
    task = add(org.rep, contact, title="  Send the quote  ", notes="Ask about\r\nfleet size")
    assert (task.module, task.record_id, task.title) == ("contacts", contact.pk, "Send the quote")
    assert task.notes == "Ask about\nfleet size"
    assert task.owner == org.rep and task.created_by == org.rep and not task.done
    event = Event.objects.get(kind="task.created")
    assert event.data == {
        "task_id": task.pk,
        "module": "contacts",
        "record_id": contact.pk,
        "owner_id": org.rep.pk,
        "due": "2026-12-10",
        "actor_id": org.rep.pk,
        "message_id": None,
    }


def test_a_workflow_makes_a_task_from_mail_without_an_actor(org):
    deal = f.deal(org.rep, "Fleet")
    task = add(None, deal, owner=org.rep, message_id=812)
    assert task.created_by is None and task.message_id == 812
    assert Event.objects.get(kind="task.created").data["actor_id"] is None


def test_only_those_who_may_edit_the_record_add_tasks_to_it(org):
    lead = f.lead(org.rep, "maybe@prospect.example")
    add(org.manager, lead, owner=org.rep)  # above the rep: may edit the rep's lead
    with pytest.raises(actions.RecordInvalid) as err:  # the peer cannot see it at all
        add(org.peer, lead)
    assert fields(err.value) == {"record_id"}
    assert "no lead" in str(err.value)
    opened("leads", AccessLevel.PUBLIC_READ)
    with pytest.raises(actions.NotAllowed):  # sees it now, but may not edit it
        add(org.peer, lead)
    assert Task.objects.count() == 1


def test_a_task_goes_only_to_an_active_user_who_may_see_the_record(org):
    account = f.account(org.rep, "Client Inc")
    with pytest.raises(actions.RecordInvalid) as err:
        add(org.rep, account, owner=org.peer)
    assert fields(err.value) == {"owner"}
    assert "cannot open this account" in str(err.value)
    gone = f.user("gone@crmail.test", manager=org.rep, role_name="Manager", is_active=False)
    with pytest.raises(actions.RecordInvalid):
        add(org.rep, account, owner=gone)
    assert add(org.rep, account, owner=org.manager).owner == org.manager


def test_bad_values_are_refused_naming_each_field(org):
    contact = f.contact(org.rep)
    with pytest.raises(actions.RecordInvalid) as err:
        add(org.rep, contact, title="  ", due=timezone.now(), notes="x" * 10_001)
    assert fields(err.value) == {"title", "due", "notes"}
    with pytest.raises(actions.RecordInvalid) as err:
        add(org.rep, contact, title="one\ntwo")
    assert "one line" in str(err.value)
    with pytest.raises(actions.RecordInvalid) as err:
        tasks.create_task(
            actor=org.rep, module="tickets", record_id=1, title="x", due=DUE, owner=org.rep
        )
    assert fields(err.value) == {"module"}
    with pytest.raises(actions.RecordInvalid) as err:
        add(org.rep, contact, title="nul \x00 here")
    assert fields(err.value) == {"title"}
    assert not Task.objects.exists()


def test_the_owner_and_those_who_may_edit_the_record_see_and_change_a_task(org):
    contact = f.contact(org.manager, "big@client.example")
    task = add(org.manager, contact, owner=org.manager)
    theirs = add(org.manager, contact, owner=org.manager, title="Another")
    # The rep cannot see the manager's contact: neither its tasks...
    assert on_record(org.rep, contact) == []
    # ...but a task given to them (the contact made visible to them for that) stays theirs.
    opened("contacts", AccessLevel.PUBLIC_READ)
    tasks.update_task(actor=org.manager, task=task, changes={"owner": org.rep})
    opened("contacts", AccessLevel.PRIVATE)
    assert list(visible_tasks(org.rep)) == [task]
    assert on_record(org.rep, contact) == [task]
    tasks.set_task_done(actor=org.rep, task=task, done=True)
    with pytest.raises(actions.NotAllowed):
        tasks.set_task_done(actor=org.rep, task=theirs, done=True)
    with pytest.raises(actions.NotAllowed):
        tasks.delete_task(actor=org.peer, task=task)
    assert set(visible_tasks(org.admin)) == {task, theirs}
    assert set(visible_tasks(org.peer)) == set()


def test_ticking_done_stamps_the_time_and_records_which_way(org):
    contact = f.contact(org.rep)
    task = add(org.rep, contact)
    tasks.set_task_done(actor=org.rep, task=task, done=True)
    task.refresh_from_db()
    assert task.done and task.done_at is not None
    tasks.set_task_done(actor=org.rep, task=task, done=True)  # already: nothing recorded
    tasks.set_task_done(actor=org.rep, task=task, done=False)
    task.refresh_from_db()
    assert not task.done and task.done_at is None
    updates = [e.data for e in Event.objects.filter(kind="task.updated").order_by("pk")]
    assert [(u["fields"], u["done"]) for u in updates] == [(["done"], True), (["done"], False)]


def test_an_edit_records_only_the_fields_that_changed(org):
    contact = f.contact(org.rep)
    task = add(org.rep, contact)
    tasks.update_task(
        actor=org.rep, task=task, changes={"title": "Call back", "due": DUE + timedelta(days=2)}
    )
    tasks.update_task(actor=org.rep, task=task, changes={"title": "Call back"})
    [event] = Event.objects.filter(kind="task.updated")
    assert event.data["fields"] == ["due"]
    with pytest.raises(actions.RecordInvalid) as err:
        tasks.update_task(actor=org.rep, task=task, changes={"done_at": None})
    assert fields(err.value) == {"done_at"}


def test_deleting_a_task_or_its_record_takes_it_away(org):
    contact = f.contact(org.rep)
    first, second = add(org.rep, contact), add(org.rep, contact, title="Second")
    first_id = first.pk
    tasks.delete_task(actor=org.rep, task=first)
    assert Event.objects.get(kind="task.deleted").data["task_id"] == first_id
    actions.delete_record(org.rep, contact)
    assert not Task.objects.filter(pk=second.pk).exists()


def test_my_open_tasks_come_overdue_first_then_by_due_day(org):
    contact, deal = f.contact(org.rep), f.deal(org.rep, "Fleet")
    later = add(org.rep, contact, title="Later", due=DUE + timedelta(days=5))
    overdue = add(org.rep, deal, title="Overdue", due=DUE - timedelta(days=3))
    soon = add(org.rep, contact, title="Soon", due=DUE)
    done = add(org.rep, contact, title="Done", due=DUE - timedelta(days=9))
    tasks.set_task_done(actor=org.rep, task=done, done=True)
    add(org.manager, contact, owner=org.manager, title="The manager's")
    assert list(open_tasks(org.rep)) == [overdue, soon, later]
    names = record_names(org.rep, [("contacts", contact.pk), ("deals", deal.pk), ("deals", 0)])
    assert names == {("contacts", contact.pk): str(contact), ("deals", deal.pk): "Fleet"}
