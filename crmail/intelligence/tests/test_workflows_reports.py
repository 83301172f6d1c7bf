"""Sentiment and intent as workflow conditions (a rule sees what the analysis found, even
when it runs before the analysis's own job) and as report dimensions, counted through
visibility like every other dimension."""

from __future__ import annotations

from collections import Counter

import pytest

from crmail.api.tests.conftest import ApiClient
from crmail.intelligence.models import Result
from crmail.mail import tags
from crmail.reports import queries as reports
from crmail.reports import saved
from crmail.workflows import actions
from crmail.workflows.spec import RuleSpec, SpecError

from . import world as w

pytestmark = pytest.mark.django_db

COMPLAINTS = {
    "triggers": ["incoming"],
    "conditions": [{"field": "intent", "op": "is", "values": ["complaint"]}],
    "actions": [{"kind": "tag", "params": {"tags": ["Complaint"]}}],
}


def test_a_rule_on_intent_tags_complaints_only(org, analyser, flow):
    world = w.build_world(org)
    actions.create_workflow(by=org.rep, name="Complaints", enabled=True, spec=COMPLAINTS)
    with flow():
        complaint = w.receive(world, w.COMPLAINT)
        question = w.receive(world, w.QUESTION, subject="Prices")
    held = tags.tags_of([complaint.pk, question.pk])
    assert held.get(complaint.pk) == ["Complaint"]
    assert held.get(question.pk, []) == []


def test_a_rule_refuses_a_sentiment_crmail_does_not_know():
    bad = {**COMPLAINTS, "conditions": [{"field": "sentiment", "op": "is", "values": ["angry"]}]}
    with pytest.raises(SpecError, match="sentiment is one of positive, neutral, negative"):
        RuleSpec.load(bad)
    with pytest.raises(SpecError):
        RuleSpec.load(
            {**bad, "conditions": [{"field": "intent", "op": "contains", "values": ["x"]}]}
        )


def test_reports_count_by_sentiment_and_intent_what_each_viewer_may_open(org, analyser, flow):
    world = w.build_world(org)
    with flow():
        w.receive(world, w.COMPLAINT, deal=world.deal)
        question = w.receive(world, w.QUESTION, subject="Prices", deal=world.deal)
        w.receive(world, w.COMPLAINT, subject="Again")
    asked = Result.objects.get(message=question)
    assert asked.sentiment != "negative" and asked.intent != "complaint"
    by_sentiment_of_rex = Counter(["negative", "negative", asked.sentiment])
    for user, seen in (
        (org.rep, True),
        (org.manager, True),
        (org.peer, False),
        (org.outsider_manager, False),
    ):
        by_sentiment = reports.email_report(user, "sentiment")
        counts = {r.key: r.count for r in by_sentiment.rows}
        assert counts == (dict(by_sentiment_of_rex) if seen else {})
        got = ApiClient(user).get(
            "/reports/emails", {"group_by": "record_type", "intent": "complaint"}
        )
        assert got.status_code == 200
        rows = {row[0]: row[-1] for row in got.json()["rows"]}
        assert rows == ({"contacts": 2, "deals": 1} if seen else {})
        assert got.json()["total"] == (2 if seen else 0)
    api = ApiClient(org.rep)
    rows = api.get("/reports/emails", {"group_by": "intent"}).json()["rows"]
    assert {row[0]: (row[1], row[-1]) for row in rows} == {
        "complaint": ("Complaint", 2),
        asked.intent: (asked.get_intent_display(), 1),
    }
    assert api.get("/reports/emails", {"intent": "angry"}).status_code == 422
    assert api.get("/reports/emails", {"group_by": "mood"}).status_code == 422


def test_a_rule_takes_a_sentiment_however_it_is_written():
    rule = RuleSpec.load(
        {**COMPLAINTS, "conditions": [{"field": "sentiment", "op": "is", "values": [" Negative"]}]}
    )
    assert rule.conditions[0].values == ("negative",)


def test_a_saved_report_keeps_its_sentiment_and_intent(org, analyser, flow):
    world = w.build_world(org)
    with flow():
        w.receive(world, w.COMPLAINT, deal=world.deal)
        w.receive(world, w.QUESTION, subject="Prices", deal=world.deal)
    filters = reports.Filters(sentiment="negative", intent="complaint")
    report = saved.save_report(org.manager, "Angry customers", "record_type", filters)
    assert saved.filters_of(report) == filters
    assert "sentiment=negative" in saved.page_path(report)
    assert reports.email_report(org.manager, "record_type", saved.filters_of(report)).total == 1
    [item] = ApiClient(org.manager).get("/reports/saved").json()["items"]
    assert (item["sentiment"], item["intent"]) == ("negative", "complaint")
