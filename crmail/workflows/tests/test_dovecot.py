"""Workflows end to end against a real Dovecot: mail is delivered with the harness, synced,
linked through the outbox and run through the rules; a rule's actions on the mailbox's
copy change the server (doveadm is the oracle).

"Mail with 'invoice' from an account with an open deal" becomes one task on the deal,
once: delivered twice, handed out again, or with the worker killed in the middle."""

from __future__ import annotations

import itertools
from decimal import Decimal
from email.utils import format_datetime

import pytest
from django.utils import timezone

from crmail.crm.models import Task
from crmail.events import dispatch
from crmail.events.models import ConsumerState
from crmail.linking.models import Link, Reason
from crmail.mailboxes.tasks import run_sync
from crmail.workflows import actions, steps
from crmail.workflows.models import RunState, WorkflowRun
from crmail.workflows.tests.test_once import Crash, Killer
from tests import factories as f

pytestmark = pytest.mark.django_db
_n = itertools.count(1)

INVOICE_RULE = {
    "triggers": ["incoming"],
    "match": "all",
    "conditions": [
        {"field": "body", "op": "contains", "values": ["invoice"]},
        {"field": "record_field", "name": "deal.status", "op": "is", "values": ["open"]},
    ],
    "actions": [
        {"kind": "link_open_deal"},
        {
            "kind": "create_task",
            "params": {
                "title": "Check the invoice",
                "due_in_days": 2,
                "assignee": "record_owner",
                "record": "deal",
            },
        },
    ],
}


def mail(sender: str, subject: str, body: str) -> bytes:
    n = next(_n)
    return "\r\n".join(
        [
            f"From: {sender}",
            "To: rep@crmail.test",
            f"Subject: {subject}",
            f"Message-ID: <wf{n}.{timezone.now().timestamp()}@customer.test>",
            f"Date: {format_datetime(timezone.now())}",
            "",
            body,
            "",
        ]
    ).encode()


@pytest.fixture
def killer(monkeypatch):  # type: ignore[no-untyped-def]
    found = Killer(steps.do)
    monkeypatch.setattr(steps, "do", found)
    return found


@pytest.fixture
def sync(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """Sync a mailbox; the outbox's consumers run at its commits, as in crmail."""

    def run(mailbox) -> None:  # type: ignore[no-untyped-def]
        with django_capture_on_commit_callbacks(execute=True):
            run_sync(mailbox)

    return run


@pytest.fixture
def acme(org, dovecot, dovecot_user, sync):  # type: ignore[no-untyped-def]
    """Jane of Acme, whose account has an open deal; the rep's mailbox, connected (its
    first sync done) before any of the tests' mail arrives."""
    login, password = dovecot_user
    account = f.account(org.rep, "Acme")
    jane = f.contact(org.rep, "jane@acme.test", account=account, first_name="Jane")
    deal = f.deal(org.rep, "Acme renewal", account=account, amount=Decimal("5000"))
    mailbox = f.mailbox(dovecot, login, password, owner=org.rep)
    dispatch.start_all()
    sync(mailbox)
    return {"server": dovecot, "login": login, "mailbox": mailbox, "jane": jane, "deal": deal}


def test_invoice_mail_from_an_account_with_an_open_deal_is_one_task_on_the_deal(org, acme, sync):
    actions.create_workflow(by=org.rep, name="Invoices", spec=INVOICE_RULE, enabled=True)
    server, login = acme["server"], acme["login"]
    invoice = mail("Jane Quinn <jane@acme.test>", "May", "Please find our invoice attached.")
    server.deliver(login, invoice)
    server.deliver(login, mail("jane@acme.test", "Lunch", "Soup on Friday?"))
    server.deliver(login, mail("someone@unknown.test", "Invoice", "An invoice, no deal."))
    sync(acme["mailbox"])

    (task,) = Task.objects.all()
    assert (task.module, task.record_id, task.title) == (
        "deals",
        acme["deal"].pk,
        "Check the invoice",
    )
    assert (task.owner, task.created_by, task.message_id) == (org.rep, org.rep, task.message_id)
    assert task.message_id is not None
    assert Link.objects.filter(module="deals", reason=Reason.WORKFLOW).count() == 1
    states = sorted(WorkflowRun.objects.values_list("state", flat=True))
    assert states == [RunState.DONE, RunState.NOT_MATCHED, RunState.NOT_MATCHED]

    # The same mail delivered again, and into another folder; the events handed out again.
    server.deliver(login, invoice)
    server.create_mailbox(login, "Archive")
    server.deliver(login, invoice, "Archive")
    sync(acme["mailbox"])
    ConsumerState.objects.filter(name="workflows").update(position=0)
    dispatch.dispatch("workflows")
    assert Task.objects.count() == 1
    assert WorkflowRun.objects.count() == 3


def test_a_worker_killed_mid_run_is_seen_waiting_and_its_work_done_once_after(
    org,
    acme,
    killer,
    django_capture_on_commit_callbacks,
):
    actions.create_workflow(by=org.rep, name="Invoices", spec=INVOICE_RULE, enabled=True)
    acme["server"].deliver(acme["login"], mail("jane@acme.test", "June", "The invoice."))
    with django_capture_on_commit_callbacks(execute=False):  # no job runs by itself
        run_sync(acme["mailbox"])
    dispatch.dispatch("linking")
    killer.die_at = 2  # the deal linked, the task made: then the worker dies
    with pytest.raises(Crash):
        dispatch.dispatch("workflows")
    assert not Task.objects.exists() and not WorkflowRun.objects.exists()
    # What the administrator sees (Events, `crmail events status`): the workflows consumer
    # with events waiting, which the minute's sweep hands out again.
    (waiting,) = [s for s in dispatch.status() if s.name == "workflows"]
    assert waiting.waiting > 0
    dispatch.dispatch("workflows")
    assert Task.objects.count() == 1
    assert WorkflowRun.objects.get().state == RunState.DONE


def test_a_users_rule_files_newsletters_on_the_server(org, acme, sync):
    server, login = acme["server"], acme["login"]
    server.create_mailbox(login, "Newsletters")
    sync(acme["mailbox"])  # the new folder is known
    actions.create_workflow(
        by=org.rep,
        name="Newsletters",
        enabled=True,
        spec={
            "triggers": ["incoming"],
            "conditions": [
                {"field": "header", "name": "List-Id", "op": "contains", "values": ["news"]}
            ],
            "actions": [
                {"kind": "mark_read"},
                {"kind": "move_to_folder", "params": {"folder": "Newsletters"}},
            ],
        },
    )
    letter = mail("news@shop.test", "Our May news", "Sales!").replace(
        b"Subject:", b"List-Id: Shop news <news.shop.test>\r\nSubject:"
    )
    server.deliver(login, letter)
    server.deliver(login, mail("jane@acme.test", "Hello", "Not a newsletter"))
    sync(acme["mailbox"])

    run = WorkflowRun.objects.get(state__in=[RunState.DONE, RunState.MATCHED])
    assert run.state == RunState.DONE, run.outcomes
    assert [o["detail"] for o in run.outcomes] == ["Marked read.", "Moved to Newsletters."]
    (moved,) = server.messages(login, "Newsletters")
    assert "\\Seen" in moved["flags"]
    assert [m["message_id"] for m in server.messages(login)] != [moved["message_id"]]
    assert len(server.messages(login)) == 1  # the other mail stays in the Inbox
