"""``/api/v1/workflows``: users manage their own rules, administrators also the
organisation's; another's rule is a 404 to everyone; bad rules a 422 in words; runs name
only mail the caller may see; a dry run counts and changes nothing."""

from __future__ import annotations

import pytest

from crmail.api.tests.conftest import ApiClient
from crmail.workflows import actions
from crmail.workflows.models import Workflow, WorkflowRun
from crmail.workflows.tests import build
from crmail.workflows.tests.test_engine import acme, flow  # noqa: F401  (fixtures)
from tests import factories as f

pytestmark = pytest.mark.django_db

RULE = {
    "triggers": ["incoming"],
    "conditions": [{"field": "subject", "op": "contains", "values": ["invoice"]}],
    "actions": [{"kind": "link_open_deal"}],
}


def test_a_user_makes_tries_turns_on_and_deletes_their_rule(org, acme, flow):  # noqa: F811
    api = ApiClient(org.rep)
    made = api.post("/workflows", {"name": "  Invoices  ", "spec": RULE})
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["name"] == "Invoices"
    assert (body["enabled"], body["organisation"], body["owner_id"]) == (False, False, org.rep.pk)
    assert body["spec"] == {
        **RULE,
        "match": "all",
        "actions": [{"kind": "link_open_deal", "params": {}}],
    }
    pk = body["id"]

    with flow():
        build.deliver(acme["box"], build.raw("jane@acme.test", subject="Invoice 7"))
        build.deliver(acme["box"], build.raw("jane@acme.test", subject="Lunch"))
    assert not WorkflowRun.objects.exists()  # off: nothing ran
    tried = api.post(f"/workflows/{pk}/dry-run", {})
    assert tried.status_code == 200, tried.content
    result = tried.json()
    assert (result["tried"], result["matched"], result["hidden"]) == (2, 1, 0)
    assert result["matches"][0]["subject"] == "Invoice 7"
    assert {"module": "deals", "record_id": acme["deal"].pk, "name": "Acme renewal"} in (
        result["matches"][0]["records"]
    )

    on = api.patch(f"/workflows/{pk}", {"enabled": True})
    assert on.status_code == 200 and on.json()["enabled"] is True
    with flow():
        message = build.deliver(acme["box"], build.raw("jane@acme.test", subject="Invoice 8"))
    runs = api.get(f"/workflows/{pk}/runs").json()
    assert runs["count"] == 1
    (run,) = runs["items"]
    assert run["state"] == "done" and run["trigger"] == "incoming"
    assert run["message"]["id"] == message.pk and run["message"]["subject"] == "Invoice 8"
    assert run["outcomes"][0]["kind"] == "link_open_deal"
    assert api.get(f"/workflows/{pk}/runs", {"state": "failing"}).json()["count"] == 0

    assert api.send("DELETE", f"/workflows/{pk}").status_code == 204
    assert not Workflow.objects.exists() and not WorkflowRun.objects.exists()


def test_bad_rules_are_refused_in_words(org):
    api = ApiClient(org.rep)
    cases = [
        ({"name": "x", "spec": {"triggers": []}}, "spec", "Choose when the rule runs"),
        (
            {"name": "x", "spec": {**RULE, "conditions": [{"field": "colour"}]}},
            "spec",
            "Unknown field in condition 1: 'colour'",
        ),
        (
            {
                "name": "x",
                "spec": {
                    **RULE,
                    "conditions": [
                        {
                            "field": "record_field",
                            "name": "deal.colour",
                            "op": "is",
                            "values": ["x"],
                        }
                    ],
                },
            },
            "spec",
            "a deal has no field 'colour'",
        ),
        (
            {
                "name": "x",
                "spec": {**RULE, "actions": [{"kind": "mark_read"}]},
                "organisation": True,
            },
            None,
            "Only administrators",
        ),
        ({"name": " ", "spec": RULE}, "name", "Give the rule a name."),
        ({"name": "x", "spec": RULE, "colour": "red"}, "colour", "Unknown field."),
        ({"name": "x", "spec": "rule"}, "spec", None),
    ]
    for body, field, words in cases:
        answer = api.post("/workflows", body)
        if field is None:
            assert answer.status_code == 403 and words in answer.json()["detail"], body
            continue
        assert answer.status_code == 422, (body, answer.content)
        (problem,) = answer.json()["detail"]
        assert problem["field"] == field, body
        assert words is None or words in problem["message"], (body, problem)
    assert not Workflow.objects.exists()
    organisation = ApiClient(org.admin).post(
        "/workflows",
        {"name": "x", "organisation": True, "spec": {**RULE, "actions": [{"kind": "trash"}]}},
    )
    assert organisation.status_code == 422
    assert "cannot change mail in people's mailboxes" in organisation.json()["detail"][0]["message"]
    huge = api.patch("/workflows/1", {"position": 10**12})
    assert huge.status_code in (404, 422)


def test_nobody_sees_or_changes_another_users_rules_not_even_an_administrator(org):
    mine = actions.create_workflow(by=org.rep, name="Mine", spec=RULE)
    everyone = actions.create_workflow(by=org.admin, name="All", spec=RULE, organisation=True)
    admins_own = actions.create_workflow(by=org.admin, name="Admin's", spec=RULE)
    rep, admin, peer = ApiClient(org.rep), ApiClient(org.admin), ApiClient(org.peer)
    assert [w["id"] for w in rep.get("/workflows").json()["items"]] == [mine.pk]
    assert [w["id"] for w in admin.get("/workflows").json()["items"]] == [
        everyone.pk,
        admins_own.pk,
    ]
    assert peer.get("/workflows").json()["count"] == 0
    for client, pk in ((admin, mine.pk), (peer, mine.pk), (rep, everyone.pk), (rep, admins_own.pk)):
        assert client.get(f"/workflows/{pk}").status_code == 404
        assert client.get(f"/workflows/{pk}/runs").status_code == 404
        assert client.patch(f"/workflows/{pk}", {"enabled": True}).status_code == 404
        assert client.post(f"/workflows/{pk}/dry-run", {}).status_code == 404
        assert client.post(f"/workflows/{pk}/retry", {}).status_code == 404
        assert client.send("DELETE", f"/workflows/{pk}").status_code == 404
    assert Workflow.objects.filter(enabled=True).count() == 0


def test_an_organisation_rules_runs_name_only_mail_the_administrator_may_see(org, flow):  # noqa: F811
    everyone = actions.create_workflow(
        by=org.admin, name="All", spec={**RULE, "conditions": []}, organisation=True, enabled=True
    )
    f.contact(org.rep, "jane@acme.test")
    with flow():
        build.deliver(build.mailbox(org.rep), build.raw("nobody@else.test", subject="Private"))
    (run,) = ApiClient(org.admin).get(f"/workflows/{everyone.pk}/runs").json()["items"]
    assert run["message"] is None and run["state"] == "done"


def test_rules_are_reordered_in_their_chain(org):
    rules = [actions.create_workflow(by=org.rep, name=f"R{n}", spec=RULE) for n in range(3)]
    api = ApiClient(org.rep)
    moved = api.patch(f"/workflows/{rules[2].pk}", {"position": 0})
    assert moved.status_code == 200 and moved.json()["position"] == 0
    order = [w["name"] for w in api.get("/workflows").json()["items"]]
    assert order == ["R2", "R0", "R1"]
