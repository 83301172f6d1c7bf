"""Trying a rule on past mail: how many of the last messages it would have matched, and
which, as far as the person trying may see them; nothing is done."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crmail.linking.links import link_messages
from crmail.linking.models import Link
from crmail.notifications.models import Notification
from crmail.workflows.dryrun import try_rule
from crmail.workflows.models import WorkflowRun
from crmail.workflows.spec import RuleSpec
from crmail.workflows.tests import build
from tests import factories as f

pytestmark = pytest.mark.django_db


def invoices(*actions: dict) -> RuleSpec:
    return RuleSpec.load(
        {
            "triggers": ["incoming"],
            "conditions": [{"field": "subject", "op": "contains", "values": ["invoice"]}],
            "actions": list(actions) or [{"kind": "link_open_deal"}],
        }
    )


def old_mail(box, subject: str, days: int, sender: str = "jane@acme.test", role="inbox"):
    message = build.stored(build.raw(sender, box.email, subject=subject))
    message.date = timezone.now() - timedelta(days=days)
    message.save(update_fields=["date"])
    build.place(message, box, role)
    return message


def test_a_users_rule_is_tried_on_their_last_mail_and_changes_nothing(org):
    account = f.account(org.rep, "Acme")
    jane = f.contact(org.rep, "jane@acme.test", account=account)
    deal = f.deal(org.rep, "Acme renewal", account=account)
    box = build.mailbox(org.rep)
    found = [old_mail(box, f"Invoice {n}", days=n) for n in range(1, 4)]
    old_mail(box, "Lunch", days=2)
    old_mail(box, "Invoice I sent", days=1, sender="rep@crmail.test", role="sent")  # outgoing
    theirs = old_mail(build.mailbox(org.peer), "Invoice to the peer", days=1)
    link_messages(m.pk for m in found)

    result = try_rule(invoices(), owner=org.rep, viewer=org.rep)
    assert (result.tried, result.matched, result.hidden, result.more) == (5, 3, 0, 0)
    assert [s.message_id for s in result.shown] == [m.pk for m in found]  # newest first
    first = result.shown[0]
    assert first.subject == "Invoice 1" and first.from_address == "jane@acme.test"
    assert {(r.module, r.id) for r in first.records} == {
        ("contact", jane.pk),
        ("account", account.pk),
        ("deal", deal.pk),
    }
    assert theirs.pk not in [s.message_id for s in result.shown]
    assert not WorkflowRun.objects.exists() and not Notification.objects.exists()
    assert not Link.objects.filter(module="deals").exists()

    assert try_rule(invoices(), owner=org.rep, viewer=org.rep, limit=2).tried == 2


def test_an_organisation_rule_counts_everyones_mail_but_lists_only_what_one_may_see(org):
    mine = old_mail(build.mailbox(org.admin), "Invoice for the admin", days=1)
    private = old_mail(build.mailbox(org.rep), "Invoice for the rep", days=2)
    result = try_rule(invoices(), owner=None, viewer=org.admin)
    assert (result.matched, result.hidden) == (2, 1)
    assert [s.message_id for s in result.shown] == [mine.pk]
    assert private.pk not in [s.message_id for s in result.shown]
