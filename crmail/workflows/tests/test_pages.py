"""The Workflows pages under Settings, through Django's test client: the editor's rows
added and removed by posting the form, a rule saved, refused in words, tried on past
mail; the list's switch and order; the log of runs with its retry button; nobody reaches
another user's rules."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from crmail.crm.models import Stage
from crmail.workflows import actions
from crmail.workflows.models import RunState, Workflow, WorkflowRun
from crmail.workflows.tests import build
from crmail.workflows.tests.test_engine import acme, flow  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

RULE = {
    "triggers": ["incoming"],
    "conditions": [{"field": "body", "op": "contains", "values": ["invoice"]}],
    "actions": [{"kind": "link_open_deal"}],
}


def signed_in(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def form(**extra: Any) -> dict[str, Any]:
    data = {
        "name": "Invoices",
        "triggers": ["incoming"],
        "match": "all",
        "c-0-field": "body",
        "c-0-op": "contains",
        "c-0-values": "invoice\nfacture",
        "a-0-kind": "notify",
        "a-0-users": ["mailbox_owner"],
        "a-0-text": "An invoice came",
    }
    return data | extra


def test_a_rule_is_built_row_by_row_saved_and_listed(org):
    client = signed_in(org.rep)
    page = client.get("/settings/workflows/new/")
    assert page.status_code == 200 and b"Add a condition" in page.content
    more = client.post("/settings/workflows/new/", form(edit="add-condition"))
    assert b'name="c-1-field"' in more.content
    fewer = client.post("/settings/workflows/new/", form(edit="remove-condition-0"))
    assert b'name="c-0-field"' not in fewer.content
    assert b"No conditions: the rule takes every message" in fewer.content
    kind = client.post(
        "/settings/workflows/new/", form(**{"a-0-kind": "create_task"}, edit="refresh")
    )
    assert b'name="a-0-title"' in kind.content and b'name="a-0-text"' not in kind.content
    assert not Workflow.objects.exists()  # none of these saved anything

    saved = client.post("/settings/workflows/new/", form(enabled="on"))
    assert saved.status_code == 302
    rule = Workflow.objects.get()
    assert (rule.owner, rule.enabled, rule.name) == (org.rep, True, "Invoices")
    assert rule.spec["conditions"] == [
        {"field": "body", "op": "contains", "values": ["invoice", "facture"]}
    ]
    assert rule.spec["actions"] == [
        {"kind": "notify", "params": {"users": ["mailbox_owner"], "text": "An invoice came"}}
    ]
    listed = client.get("/settings/workflows/").content.decode()
    assert "Invoices" in listed
    assert "Mail I receive · Text of the message contains invoice or facture" in listed

    # Opened again, the editor shows the rule as saved.
    edit = client.get(f"/settings/workflows/{rule.pk}/").content.decode()
    assert "invoice\nfacture</textarea>" in edit and 'value="An invoice came"' in edit


def test_what_is_wrong_is_said_above_the_rows_and_nothing_is_saved(org):
    client = signed_in(org.rep)
    cases = [
        (form(triggers=[]), "Choose when the rule runs"),
        (form(**{"c-0-field": "size", "c-0-op": "gt", "c-0-values": "big"}), "write a size like"),
        (
            form(**{"c-0-field": "record_field", "c-0-name": "deal.amount", "c-0-op": "gt"}),
            "&#x27;invoice&#x27; is not a number",
        ),
        (form(**{"a-0-text": ""}), "needs text"),
        (form(name=""), "This field is required."),
    ]
    for data, words in cases:
        answer = client.post("/settings/workflows/new/", data)
        assert answer.status_code == 200, data
        assert words in answer.content.decode(), (words, data)
    assert not Workflow.objects.exists()
    admin = signed_in(org.admin)
    refused = admin.post("/settings/workflows/new/?organisation=1", form(**{"a-0-kind": "trash"}))
    assert "cannot change mail in people" in refused.content.decode()
    assert signed_in(org.rep).get("/settings/workflows/new/?organisation=1").status_code == 403


def test_trying_shows_what_would_have_matched_and_does_nothing(org, acme, flow):  # noqa: F811
    with flow():
        build.deliver(acme["box"], build.raw("jane@acme.test", subject="May", body="invoice"))
        build.deliver(acme["box"], build.raw("jane@acme.test", subject="Lunch", body="soup"))
    answer = signed_in(org.rep).post("/settings/workflows/new/", form(edit="try"))
    page = answer.content.decode()
    assert "Would have matched 1 of the last 2 messages" in page
    assert ">May</a>" in page and "Lunch" not in page
    assert "Acme renewal" in page and "the contact&#x27;s open deal" in page
    assert not Workflow.objects.exists() and not WorkflowRun.objects.exists()


def test_the_switch_the_order_and_deleting(org):
    first = actions.create_workflow(by=org.rep, name="First", spec=RULE)
    second = actions.create_workflow(by=org.rep, name="Second", spec=RULE)
    client = signed_in(org.rep)
    client.post(f"/settings/workflows/{first.pk}/enabled/", {"enabled": "on"})
    first.refresh_from_db()
    assert first.enabled
    client.post(f"/settings/workflows/{second.pk}/move/", {"direction": "up"})
    assert [w.name for w in Workflow.objects.order_by("position")] == ["Second", "First"]
    assert b"Delete the rule" in client.get(f"/settings/workflows/{first.pk}/delete/").content
    client.post(f"/settings/workflows/{first.pk}/delete/")
    assert list(Workflow.objects.values_list("name", flat=True)) == ["Second"]


def test_the_log_shows_each_run_and_runs_a_failed_one_again(org, acme, flow):  # noqa: F811
    rule = actions.create_workflow(
        by=org.rep,
        name="Stage",
        enabled=True,
        spec={
            **RULE,
            "actions": [
                {
                    "kind": "update_field",
                    "params": {"module": "deal", "field": "stage", "value": "Signed"},
                }
            ],
        },
    )
    with flow():
        build.deliver(acme["box"], build.raw("jane@acme.test", subject="Paid", body="invoice"))
    client = signed_in(org.rep)
    log = client.get(f"/settings/workflows/{rule.pk}/runs/?state=failing").content.decode()
    assert ">Paid</a>" in log
    assert "An action failed, will retry" in log
    assert "has no stage named &#x27;Signed&#x27;" in log
    Stage.objects.create(pipeline=acme["deal"].pipeline, name="Signed", position=9, probability=95)
    run = WorkflowRun.objects.get()
    again = client.post(f"/settings/workflows/{rule.pk}/runs/", {"run": str(run.pk)}, follow=True)
    assert "1 run done." in again.content.decode()
    run.refresh_from_db()
    assert run.state == RunState.DONE


def test_nobody_reaches_another_users_rules(org):
    mine = actions.create_workflow(by=org.rep, name="Mine", spec=RULE)
    for user in (org.admin, org.peer, org.manager):
        client = signed_in(user)
        for path in ("", "runs/", "delete/"):
            assert client.get(f"/settings/workflows/{mine.pk}/{path}").status_code == 404
        assert (
            client.post(f"/settings/workflows/{mine.pk}/enabled/", {"enabled": "on"}).status_code
            == 404
        )
        assert "Mine" not in client.get("/settings/workflows/").content.decode()
    mine.refresh_from_db()
    assert not mine.enabled
