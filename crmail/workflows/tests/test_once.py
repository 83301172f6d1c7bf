"""Exactly once: a worker killed in the middle of a run, events handed out again, copies
of a message arriving in several folders and mailboxes — each rule acts once per message."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmail.crm.models import Task
from crmail.events import dispatch
from crmail.events.models import ConsumerState, Event, Failure, Sequencer
from crmail.linking.models import Link, Reason
from crmail.mail.models import MessageTag
from crmail.notifications.models import Kind, Notification
from crmail.workflows import actions, engine, steps
from crmail.workflows.models import RunState, WorkflowRun
from crmail.workflows.tests import build
from tests import factories as f

pytestmark = pytest.mark.django_db

INVOICE = {"field": "body", "op": "contains", "values": ["invoice"]}


class Crash(BaseException):
    """A worker killed in the middle of a run: nothing the dispatcher catches."""


class Killer:
    """Wraps ``steps.do``: the action is done, then the worker dies (once, at call n)."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real = real
        self.calls = 0
        self.die_at: int | None = None

    def __call__(self, ctx, index, action):  # type: ignore[no-untyped-def]
        outcome = self.real(ctx, index, action)
        self.calls += 1
        if self.die_at is not None and self.calls >= self.die_at:
            self.die_at = None
            raise Crash
        return outcome


@pytest.fixture
def killer(monkeypatch):
    found = Killer(steps.do)
    monkeypatch.setattr(steps, "do", found)
    return found


@pytest.fixture
def world(org):
    account = f.account(org.rep, "Acme")
    f.contact(org.rep, "jane@acme.test", account=account)
    deal = f.deal(org.rep, "Acme renewal", account=account, amount=Decimal("100"))
    actions.create_workflow(
        by=org.rep,
        name="Invoices to the deal",
        enabled=True,
        spec={
            "triggers": ["incoming"],
            "conditions": [INVOICE],
            "actions": [
                {"kind": "link_open_deal"},
                {"kind": "create_task", "params": {"title": "Check the invoice"}},
            ],
        },
    )
    actions.create_workflow(
        by=org.admin,
        name="Tell the owner",
        organisation=True,
        enabled=True,
        spec={
            "triggers": ["incoming"],
            "conditions": [INVOICE],
            "actions": [
                {"kind": "notify", "params": {"users": ["mailbox_owner"], "text": "Invoice"}},
                {"kind": "tag", "params": {"tags": ["invoice"]}},
            ],
        },
    )
    return {"deal": deal, "rep": build.mailbox(org.rep), "peer": build.mailbox(org.peer)}


def _run_consumers() -> None:
    dispatch.dispatch("linking")
    dispatch.dispatch("workflows")


def test_a_worker_killed_after_the_action_leaves_no_trace_and_the_rerun_acts_once(world, killer):
    message = build.deliver(world["rep"], build.raw("jane@acme.test", body="Our invoice"))
    dispatch.dispatch("linking")
    killer.die_at = 1  # the deal is linked, then the worker dies before the commit
    with pytest.raises(Crash):
        dispatch.dispatch("workflows")
    assert not WorkflowRun.objects.exists()
    assert not Link.objects.filter(reason=Reason.WORKFLOW).exists()
    # The next worker is handed the same events again: the work is done, once.
    dispatch.dispatch("workflows")
    assert Link.objects.filter(message=message, reason=Reason.WORKFLOW).count() == 1
    assert Notification.objects.filter(kind=Kind.WORKFLOW, message=message).count() == 1
    assert Task.objects.filter(message_id=message.pk).count() == 1
    assert MessageTag.objects.filter(message=message).count() == 1
    assert set(WorkflowRun.objects.values_list("state", flat=True)) == {RunState.DONE}
    # And the same events once more (a dispatcher that died before saving its place).
    ConsumerState.objects.filter(name="workflows").update(position=0)
    dispatch.dispatch("workflows")
    assert WorkflowRun.objects.count() == 2
    assert Link.objects.filter(message=message, reason=Reason.WORKFLOW).count() == 1


# Mail (message n, whether it says "invoice", where a copy lands), workers (dying at
# the k-th action or not), events handed out again, the minute's sweep.
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("mail"),
            st.integers(0, 2),
            st.booleans(),
            st.sampled_from(["rep", "peer", "rep-archive"]),
        ),
        st.tuples(st.just("work"), st.one_of(st.none(), st.integers(1, 3))),
        st.tuples(st.just("again"), st.integers(0, 6)),
        st.tuples(st.just("sweep"), st.none()),
    ),
    max_size=8,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_any_interleaving_of_mail_crashes_and_repeats_acts_once_per_rule_and_message(
    world, killer, ops
):
    with transaction.atomic():  # each example starts from nothing
        Event.objects.all().delete()
        ConsumerState.objects.all().delete()
        Failure.objects.all().delete()
        Sequencer.objects.all().delete()
        dispatch.start_all()
        messages: dict[int, list] = {}  # n -> [message id, says invoice, in a rep's box]
        for op in ops:
            if op[0] == "mail":
                _, n, invoice, where = op
                box = world["peer" if where == "peer" else "rep"]
                role = "archive" if where == "rep-archive" else "inbox"
                if n not in messages:
                    body = f"Mail {n}: " + ("the invoice" if invoice else "lunch?")
                    made = build.deliver(box, build.raw("jane@acme.test", body=body), role)
                    messages[n] = [made.pk, invoice, False]
                else:
                    with transaction.atomic():
                        build.place(build_message(messages[n][0]), box, role)
                messages[n][2] |= where != "peer"
            elif op[0] == "work":
                killer.die_at = None if op[1] is None else killer.calls + op[1]
                try:
                    with transaction.atomic():
                        _run_consumers()
                except Crash:
                    pass
            elif op[0] == "again":
                state = ConsumerState.objects.get(name="workflows")
                state.position = max(0, state.position - op[1])
                state.save(update_fields=["position"])
            else:
                for pk in engine.due():
                    engine.work(pk)
        killer.die_at = None
        _run_consumers()

        for pk, invoice, the_reps in messages.values():
            runs = WorkflowRun.objects.filter(message_id=pk)
            # The organisation's rule once; the rep's own once if it is the rep's mail.
            assert runs.count() == 1 + the_reps
            assert set(runs.values_list("state", flat=True)) == (
                {RunState.DONE} if invoice else {RunState.NOT_MATCHED}
            )
            links = Link.objects.filter(message_id=pk, reason=Reason.WORKFLOW)
            assert list(links.values_list("record_id", flat=True)) == (
                [world["deal"].pk] if invoice and the_reps else []
            )
            tasks = Task.objects.filter(message_id=pk)
            assert list(tasks.values_list("record_id", flat=True)) == (
                [world["deal"].pk] if invoice and the_reps else []
            )
            assert MessageTag.objects.filter(message_id=pk).count() == (1 if invoice else 0)
            # Told once each: the owners whose copies were there when the rule ran.
            told = Notification.objects.filter(message_id=pk, kind=Kind.WORKFLOW)
            assert told.exists() == invoice
        assert not Failure.objects.exists()
        transaction.set_rollback(True)


def build_message(pk: int):  # type: ignore[no-untyped-def]
    from crmail.mail.models import Message

    return Message.objects.get(pk=pk)
