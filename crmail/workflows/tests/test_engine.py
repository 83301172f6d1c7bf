"""The engine through the outbox: rules run on new mail after linking, once per rule and
message whatever the events that bring it, on the mail of the rule's owner only; a
failing action is retried, then waits as failed and is run again by hand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crmail.crm.models import Deal, Stage, Task
from crmail.events import dispatch
from crmail.events.models import ConsumerState, Failure
from crmail.events.registry import CONSUMERS, Consumer
from crmail.linking.models import Link, Reason
from crmail.mail import tags
from crmail.mailboxes.models import SentMessage
from crmail.notifications.models import Kind, Notification
from crmail.people.models import ModuleDefault
from crmail.webhooks import actions as webhook_actions
from crmail.webhooks.models import Delivery
from crmail.webhooks.tests.receiver import receiver
from crmail.workflows import actions, engine, scope
from crmail.workflows.models import RunState, WorkflowRun
from crmail.workflows.spec import Trigger
from crmail.workflows.tests import build
from tests import factories as f

pytestmark = pytest.mark.django_db

INVOICE = {"field": "body", "op": "contains", "values": ["invoice"]}


def spec(*actions_: dict, triggers=("incoming",), conditions=(INVOICE,)) -> dict:
    return {"triggers": list(triggers), "conditions": list(conditions), "actions": list(actions_)}


@pytest.fixture
def flow(django_capture_on_commit_callbacks):
    """Run what commits inside as crmail does: the eager consumers (linking) at once, the
    others (workflows) as jobs, which the tests' queue runs at once."""
    dispatch.start_all()

    class Flow:
        def __call__(self):  # type: ignore[no-untyped-def]
            return django_capture_on_commit_callbacks(execute=True)

    return Flow()


@pytest.fixture
def acme(org):
    """Jane Quinn of Acme, whose account has an open deal; the rep's mailbox."""
    account = f.account(org.rep, "Acme")
    jane = f.contact(org.rep, "jane@acme.test", account=account, first_name="Jane")
    deal = f.deal(org.rep, "Acme renewal", account=account, amount=Decimal("5000"))
    return {"account": account, "jane": jane, "deal": deal, "box": build.mailbox(org.rep)}


def test_a_rule_acts_once_on_a_message_however_often_its_events_come(org, acme, flow):
    rule = actions.create_workflow(
        by=org.rep, name="Invoices", enabled=True, spec=spec({"kind": "link_open_deal"})
    )
    with flow():
        message = build.deliver(acme["box"], build.raw("jane@acme.test", body="The invoice"))
    link = Link.objects.get(message=message, module="deals")
    assert (link.record_id, link.reason, link.created_by) == (
        acme["deal"].pk,
        Reason.WORKFLOW,
        org.rep,
    )
    run = WorkflowRun.objects.get()
    assert (run.workflow, run.message, run.state, run.trigger) == (
        rule,
        message,
        RunState.DONE,
        "incoming",
    )
    assert run.outcomes == [
        {"kind": "link_open_deal", "state": "done", "detail": "Linked to the deal Acme renewal"}
    ]
    # Every event handed out again (a crash before the position moved), and a second copy
    # of the same mail in another folder: nothing more happens.
    ConsumerState.objects.filter(name="workflows").update(position=0)
    with flow():
        build.place(message, acme["box"], "archive")
        dispatch.dispatch("workflows")
    assert WorkflowRun.objects.count() == 1
    assert Link.objects.filter(module="deals").count() == 1


def test_a_mail_that_does_not_match_is_logged_as_such_and_left_alone(org, acme, flow):
    actions.create_workflow(
        by=org.rep, name="Invoices", enabled=True, spec=spec({"kind": "link_open_deal"})
    )
    with flow():
        build.deliver(acme["box"], build.raw("jane@acme.test", body="Lunch on Friday?"))
    run = WorkflowRun.objects.get()
    assert (run.state, run.outcomes, run.actions) == (RunState.NOT_MATCHED, [], [])
    assert not Link.objects.filter(module="deals").exists()


def test_rules_that_are_off_do_nothing_and_later_mail_meets_a_rule_turned_on(org, acme, flow):
    rule = actions.create_workflow(by=org.rep, name="Invoices", spec=spec({"kind": "stop"}))
    with flow():
        build.deliver(acme["box"], build.raw("jane@acme.test", body="invoice 1"))
    assert not WorkflowRun.objects.exists()
    actions.set_enabled(rule, True, by=org.rep)
    with flow():
        second = build.deliver(acme["box"], build.raw("jane@acme.test", body="invoice 2"))
    assert list(WorkflowRun.objects.values_list("message", flat=True)) == [second.pk]


def test_incoming_and_outgoing_as_each_owner_sees_a_message(org):
    rep_box, peer_box = build.mailbox(org.rep), build.mailbox(org.peer)
    customer = build.stored(build.raw("jane@acme.test", "rep@crmail.test, peer@crmail.test"))
    build.place(customer, rep_box, "inbox")
    build.place(customer, peer_box, "archive")
    mine = build.stored(build.raw("rep@crmail.test", "jane@acme.test"))
    build.place(mine, rep_box, "archive")  # Gmail's All Mail holds what one sends
    to_self = build.stored(build.raw("rep@crmail.test", "rep@crmail.test"))
    build.place(to_self, rep_box, "inbox")
    build.place(to_self, rep_box, "sent")
    from_crmail = build.stored(build.raw("peer@crmail.test", "jane@acme.test"))
    SentMessage.objects.create(message=from_crmail, sender=org.peer, from_address=org.peer.email)
    trashed = build.stored(build.raw("jane@acme.test"))
    build.place(trashed, rep_box, "trash")

    held = scope.holders([customer.pk, mine.pk, to_self.pk, from_crmail.pk, trashed.pk])
    incoming, outgoing = {Trigger.INCOMING}, {Trigger.OUTGOING}
    assert held[customer.pk] == {org.rep.pk: incoming, org.peer.pk: incoming}
    assert held[mine.pk] == {org.rep.pk: outgoing}
    assert held[to_self.pk] == {org.rep.pk: incoming | outgoing}
    assert held[from_crmail.pk] == {org.peer.pk: outgoing}
    assert trashed.pk not in held
    # A deactivated colleague's copies are nobody's mail.
    org.peer.is_active = False
    org.peer.save()
    assert scope.holders([customer.pk])[customer.pk] == {org.rep.pk: incoming}


def test_old_mail_that_a_first_sync_finds_runs_no_rules(org, acme, flow):
    actions.create_workflow(by=org.rep, name="All", enabled=True, spec=spec({"kind": "stop"}))
    with flow():
        old = build.stored(build.raw("jane@acme.test", body="invoice"))
        old.date = timezone.now() - timedelta(days=40)
        old.save(update_fields=["date"])
        build.place(old, acme["box"])
    assert not WorkflowRun.objects.exists()
    assert scope.holders([old.pk], fresh_only=False)[old.pk] == {org.rep.pk: {Trigger.INCOMING}}


def test_a_users_rule_acts_on_their_mail_only_and_the_organisations_once(org, acme, flow):
    peer_box = build.mailbox(org.peer)
    mine = actions.create_workflow(
        by=org.rep, name="Mine", enabled=True, spec=spec({"kind": "stop"})
    )
    theirs = actions.create_workflow(
        by=org.peer, name="Theirs", enabled=True, spec=spec({"kind": "stop"})
    )
    everyone = actions.create_workflow(
        by=org.admin, name="All", organisation=True, enabled=True, spec=spec({"kind": "stop"})
    )
    with flow():
        shared = build.deliver(acme["box"], build.raw("jane@acme.test", body="invoice A"))
        build.place(shared, peer_box)
        only_rep = build.deliver(acme["box"], build.raw("jane@acme.test", body="invoice B"))
    runs = set(WorkflowRun.objects.values_list("workflow", "message", "mailbox_owner"))
    assert runs == {
        (mine.pk, shared.pk, org.rep.pk),
        (theirs.pk, shared.pk, org.peer.pk),
        (everyone.pk, shared.pk, org.rep.pk),
        (mine.pk, only_rep.pk, org.rep.pk),
        (everyone.pk, only_rep.pk, org.rep.pk),
    }


def test_stop_skips_the_later_rules_of_its_chain_only(org, acme, flow):
    first = actions.create_workflow(
        by=org.rep, name="First", enabled=True, spec=spec({"kind": "stop"})
    )
    later = actions.create_workflow(
        by=org.rep, name="Later", enabled=True, spec=spec({"kind": "link_open_deal"})
    )
    everyone = actions.create_workflow(
        by=org.admin,
        name="All",
        organisation=True,
        enabled=True,
        spec=spec({"kind": "link_open_deal"}),
    )
    with flow():
        build.deliver(acme["box"], build.raw("jane@acme.test", body="invoice"))
    assert set(WorkflowRun.objects.values_list("workflow", flat=True)) == {first.pk, everyone.pk}
    assert WorkflowRun.objects.get(workflow=first).stopped
    actions.move(later, by=org.rep, up=True)
    assert [w.name for w in actions.manageable(org.rep).order_by("position")] == [
        "Later",
        "First",
    ]


def test_a_users_rule_sees_only_records_its_owner_may_see(org, flow):
    box = build.mailbox(org.peer)
    account = f.account(org.rep, "Acme")
    f.contact(org.rep, "jane@acme.test", account=account)  # the rep's: private to the peer
    f.deal(org.rep, "Acme renewal", account=account)
    actions.create_workflow(
        by=org.peer,
        name="Deals",
        enabled=True,
        spec=spec(
            {"kind": "link_open_deal"},
            conditions=[{"field": "record_type", "op": "is", "values": ["deal"]}],
        ),
    )
    with flow():
        build.deliver(box, build.raw("jane@acme.test", "peer@crmail.test", body="invoice"))
    assert WorkflowRun.objects.get().state == RunState.NOT_MATCHED
    assert not Link.objects.filter(module="deals").exists()


def test_notify_tells_only_those_who_may_see_the_mail(org, acme, flow):
    actions.create_workflow(
        by=org.admin,
        name="Tell",
        organisation=True,
        enabled=True,
        spec=spec(
            {
                "kind": "notify",
                "params": {
                    "users": ["mailbox_owner", org.manager.pk, org.outsider_manager.pk],
                    "text": "Invoice from a customer",
                },
            }
        ),
    )
    with flow():
        message = build.deliver(
            acme["box"], build.raw("jane@acme.test", subject="May", body="invoice")
        )
    told = Notification.objects.filter(kind=Kind.WORKFLOW)
    # The rep's own mail; the manager above sees public mail; Eve, in another branch, not.
    assert set(told.values_list("user", flat=True)) == {org.rep.pk, org.manager.pk}
    assert {n.title for n in told} == {"Invoice from a customer: May"}
    assert told.get(user=org.rep).message == message
    run = WorkflowRun.objects.get()
    assert run.state == RunState.DONE
    assert "Not told Eve East: they may not see this mail." in run.outcomes[0]["detail"]


def test_a_failing_action_is_retried_then_waits_and_is_run_again(org, acme, flow):
    rule = actions.create_workflow(
        by=org.rep,
        name="Won",
        enabled=True,
        spec=spec(
            {
                "kind": "update_field",
                "params": {"module": "deal", "field": "stage", "value": "Signed"},
            }
        ),
    )
    with flow():
        build.deliver(acme["box"], build.raw("jane@acme.test", body="invoice"))
    run = WorkflowRun.objects.get()
    assert run.state == RunState.RETRYING and run.attempts == 1
    assert "has no stage named 'Signed'" in run.error
    assert engine.due() == []  # not before its pause is over
    moment = timezone.now()
    for _ in range(len(engine.RETRY_DELAYS)):
        moment += timedelta(hours=5)
        assert engine.due(now=moment) == [run.pk]
        engine.work(run.pk, now=moment)
    run.refresh_from_db()
    assert (run.state, run.next_try_at) == (RunState.FAILED, None)
    assert run.attempts == len(engine.RETRY_DELAYS) + 1
    assert engine.due(now=moment + timedelta(days=9)) == []

    # Someone adds the stage; the owner runs it again and it is done, once.
    Stage.objects.create(pipeline=acme["deal"].pipeline, name="Signed", position=9, probability=95)
    result = actions.retry_runs(rule, by=org.rep)
    assert (result.done, result.failed) == (1, 0)
    run.refresh_from_db()
    assert (run.state, run.error) == (RunState.DONE, "")
    assert Deal.objects.get(pk=acme["deal"].pk).stage.name == "Signed"


def test_a_message_linking_failed_on_waits_for_linking(org, acme, flow, monkeypatch):
    actions.create_workflow(
        by=org.rep, name="Invoices", enabled=True, spec=spec({"kind": "link_open_deal"})
    )
    linking = CONSUMERS["linking"]

    def broken(batch):  # type: ignore[no-untyped-def]
        raise RuntimeError("the database went away")

    monkeypatch.setitem(CONSUMERS, "linking", Consumer(**{**linking.__dict__, "handler": broken}))
    with flow():
        build.deliver(acme["box"], build.raw("jane@acme.test", body="invoice"))
    assert not WorkflowRun.objects.exists()
    assert set(Failure.objects.values_list("consumer", flat=True)) == {"linking", "workflows"}
    monkeypatch.setitem(CONSUMERS, "linking", linking)
    waiting = Failure.objects.count()  # linking's, and the workflows' of each event
    result = dispatch.retry()  # as "Handle all parked events again" does, oldest first
    assert result.handled == 0  # not parked yet: retried with backoff by themselves
    result = dispatch.retry([x.pk for x in Failure.objects.order_by("pk")])
    assert (result.handled, result.failed) == (waiting, 0)
    assert WorkflowRun.objects.get().state == RunState.DONE
    assert Link.objects.filter(module="deals", reason=Reason.WORKFLOW).count() == 1


def test_a_webhook_gets_one_signed_call_keyed_by_the_run(org, acme, flow):
    with receiver() as hook:
        endpoint, secret = webhook_actions.create_endpoint(
            hook.url, ["message.linked"], by=org.admin
        )
        actions.create_workflow(
            by=org.admin,
            name="Hook",
            organisation=True,
            enabled=True,
            spec=spec({"kind": "call_webhook", "params": {"endpoint_id": endpoint.pk}}),
        )
        with flow():
            message = build.deliver(acme["box"], build.raw("jane@acme.test", body="invoice"))
    run = WorkflowRun.objects.get()
    calls = [c for c in hook.calls if c.headers["webhook-id"].startswith("wfrun_")]
    (call,) = calls
    body = call.verified(secret)
    assert call.headers["webhook-id"] == f"wfrun_{run.pk}_1"
    assert body["type"] == "workflow.matched"
    assert body["data"] == {
        "workflow_id": run.workflow_id,
        "workflow": "Hook",
        "run_id": run.pk,
        "message_id": message.pk,
        "trigger": "incoming",
        "records": [
            {"module": "contacts", "record_id": acme["jane"].pk},
            {"module": "accounts", "record_id": acme["account"].pk},
            {"module": "deals", "record_id": acme["deal"].pk},
        ],
    }
    assert run.outcomes[0]["delivery_id"] == Delivery.objects.get(key=f"wfrun_{run.pk}_1").pk


def test_an_organisation_rule_changes_records_as_the_admin_who_saved_it(org, acme, flow):
    actions.create_workflow(
        by=org.admin,
        name="Amount",
        organisation=True,
        enabled=True,
        spec=spec(
            {"kind": "update_field", "params": {"module": "deal", "field": "amount", "value": 7500}}
        ),
    )
    with flow():
        build.deliver(acme["box"], build.raw("jane@acme.test", body="invoice"))
    assert Deal.objects.get(pk=acme["deal"].pk).amount == Decimal("7500")
    assert WorkflowRun.objects.get().state == RunState.DONE


def test_a_task_goes_on_the_deal_for_its_owner_once_and_the_message_is_tagged(org, acme, flow):
    deal = acme["deal"]
    deal.owner = org.peer
    deal.save()
    actions.create_workflow(
        by=org.admin,
        name="Invoices",
        organisation=True,
        enabled=True,
        spec=spec(
            {"kind": "create_task", "params": {"title": "Check the invoice", "due_in_days": 3}},
            {"kind": "tag", "params": {"tags": ["Invoice", "billing"]}},
        ),
    )
    with flow():
        message = build.deliver(acme["box"], build.raw("jane@acme.test", body="invoice"))
    (task,) = Task.objects.all()
    assert (task.module, task.record_id, task.owner, task.created_by) == (
        "deals",
        deal.pk,
        org.peer,  # the record's owner
        None,  # an organisation's rule acts as crmail itself
    )
    assert task.message_id == message.pk
    assert task.due == timezone.localdate(message.date) + timedelta(days=3)
    assert set(tags.tags_of([message.pk])[message.pk]) == {"billing", "Invoice"}
    run = WorkflowRun.objects.get()
    assert run.outcomes[0]["task_id"] == task.pk
    assert run.outcomes[0]["detail"].startswith("Task “Check the invoice” on the deal Acme renewal")


def test_a_users_rule_puts_no_task_where_its_owner_may_not_add_one(org, flow):
    box = build.mailbox(org.peer)
    jane = f.contact(org.rep, "jane@acme.test")  # the rep's contact, public to read only
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    actions.create_workflow(
        by=org.peer,
        name="Tasks",
        enabled=True,
        spec=spec({"kind": "create_task", "params": {"title": "Call back", "record": "contact"}}),
    )
    with flow():
        build.deliver(box, build.raw("jane@acme.test", "peer@crmail.test", body="invoice"))
    assert not Task.objects.exists()
    run = WorkflowRun.objects.get()
    assert run.state == RunState.DONE and run.outcomes[0]["state"] == "skipped"
    assert jane.pk  # the contact is there; the peer may only read it
