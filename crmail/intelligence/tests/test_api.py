"""Email intelligence through the API, on real mail: the ``intelligence`` object and the
filters go through visibility (the manager sees his rep's mail, a peer and a manager of
another branch do not), suggestions are answered, bad input is a clear 4xx."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from crmail.api.tests.conftest import ApiClient, fields
from crmail.crm.models import Contact, Task
from crmail.intelligence import queries, switch
from crmail.intelligence.models import Decision, Result
from crmail.sharing import actions
from crmail.workflows.tests import build

from . import world as w

pytestmark = pytest.mark.django_db


@pytest.fixture
def mail(org, analyser, flow):
    world = w.build_world(org)
    with flow():
        complaint = w.receive(world, w.COMPLAINT, deal=world.deal)
        question = w.receive(world, w.QUESTION, subject="Prices", deal=world.deal)
        meeting = w.receive(world, w.MEETING, subject="Contract", deal=world.deal)
    return world, complaint, question, meeting


def test_the_message_carries_its_intelligence_to_whoever_may_open_it(org, mail):
    _, complaint, _, _ = mail
    for user in (org.rep, org.manager):
        got = ApiClient(user).get(f"/messages/{complaint.pk}")
        assert got.status_code == 200
        found = got.json()["intelligence"]
        assert (found["sentiment"], found["intent"]) == ("negative", "complaint")
        assert found["sentiment_score"] < 0
        assert found["signature"]["phones"] == ["+44 20 7946 0958"]
        assert set(found) == {
            "sentiment",
            "sentiment_score",
            "intent",
            "summary",
            "reply_text",
            "signature",
            "meetings",
            "language",
        }
    for user in (org.peer, org.outsider_manager):
        assert ApiClient(user).get(f"/messages/{complaint.pk}").status_code == 404
        assert (
            ApiClient(user).get(f"/messages/{complaint.pk}/intelligence/suggestions").status_code
            == 404
        )


def test_switched_off_the_object_is_null(org, mail):
    _, complaint, _, _ = mail
    switch.set_state(org.admin, enabled=False)
    assert ApiClient(org.rep).get(f"/messages/{complaint.pk}").json()["intelligence"] is None


def test_list_filters_go_through_visibility(org, mail):
    world, complaint, _, _ = mail
    path = f"/deals/{world.deal.pk}/emails"
    for user, expected in (
        (org.rep, [complaint.pk]),
        (org.manager, [complaint.pk]),
        (org.peer, []),
        (org.outsider_manager, []),
    ):
        api = ApiClient(user)
        got = api.get(path, {"sentiment": "negative"})
        assert got.status_code == 200
        assert [i["id"] for i in got.json()["items"]] == expected
        everything = api.get(path).json()["items"]
        assert all(i["intelligence"] is not None for i in everything)
        assert len(everything) == (3 if expected else 0)
        found = api.get("/search", {"q": "intent:complaint deal:open", "period": "week"}).json()[
            "items"
        ]
        assert [i["id"] for i in found] == expected
        assert [
            i["id"] for i in api.get("/search", {"intent": "complaint"}).json()["items"]
        ] == expected
    rep = ApiClient(org.rep)
    inbox = rep.get("/inbox", {"intent": "complaint", "deal": "open", "period": "week"}).json()
    assert [i["message_id"] for i in inbox["items"]] == [complaint.pk]
    assert inbox["items"][0]["intelligence"]["intent"] == "complaint"
    assert ApiClient(org.manager).get("/inbox", {"intent": "complaint"}).json()["items"] == []


def test_bad_filters_are_422(org, mail):
    world, *_ = mail
    api = ApiClient(org.rep)
    got = api.get(f"/deals/{world.deal.pk}/emails", {"sentiment": "furious"})
    assert got.status_code == 422 and fields(got) == {"sentiment"}
    assert api.get("/inbox", {"intent": "nonsense"}).status_code == 422
    got = api.get("/search", {"q": "sentiment:furious"})
    assert got.status_code == 422 and "sentiment:" in got.json()["detail"][0]["message"]


def test_a_phone_number_from_the_signature_is_applied_when_accepted(org, mail):
    world, complaint, _, _ = mail
    api = ApiClient(org.rep)
    offers = api.get(f"/messages/{complaint.pk}/intelligence/suggestions").json()
    [offer] = offers["signature"]
    assert offer["state"] == "offered"
    assert {d["field"]: (d["current"], d["found"]) for d in offer["details"]} == {
        "title": ("", "Head of Purchasing"),
        "phone": ("", "+44 20 7946 0958"),
    }
    body = {"module": "contacts", "record_id": world.jane.pk, "fields": ["phone"]}
    got = api.post(f"/messages/{complaint.pk}/intelligence/signature/accept", body)
    assert got.status_code == 200, got.content
    jane = Contact.objects.get(pk=world.jane.pk)
    assert (jane.phone, jane.title) == ("+44 20 7946 0958", "")  # only what was ticked
    again = api.post(f"/messages/{complaint.pk}/intelligence/signature/accept", body)
    assert again.status_code == 409
    # A peer may view Jane but may not open the message: not found.
    peer = ApiClient(org.peer).post(f"/messages/{complaint.pk}/intelligence/signature/accept", body)
    assert peer.status_code == 404


def test_a_dismissed_signature_changes_nothing(org, mail):
    world, complaint, _, _ = mail
    api = ApiClient(org.rep)
    body = {"module": "contacts", "record_id": world.jane.pk}
    got = api.post(f"/messages/{complaint.pk}/intelligence/signature/dismiss", body)
    assert got.status_code == 200
    jane = Contact.objects.get(pk=world.jane.pk)
    assert (jane.phone, jane.title) == ("", "")
    assert Decision.objects.get().state == "dismissed"
    got = api.post(
        f"/messages/{complaint.pk}/intelligence/signature/accept", {**body, "fields": ["phone"]}
    )
    assert got.status_code == 409


def test_bad_answers_are_4xx(org, mail):
    world, complaint, question, _ = mail
    api = ApiClient(org.rep)
    url = f"/messages/{complaint.pk}/intelligence/signature/accept"
    got = api.post(url, {"module": "contacts", "record_id": world.jane.pk, "fields": ["email"]})
    assert got.status_code == 422 and fields(got) == {"fields"}
    got = api.post(url, {"module": "contacts", "record_id": world.jane.pk, "fields": []})
    assert got.status_code == 422
    got = api.post(url, {"module": "contacts", "record_id": 999999, "fields": ["phone"]})
    assert got.status_code == 404
    assert api.post(url, raw=b"not json").status_code == 400
    got = api.post(
        f"/messages/{question.pk}/intelligence/meetings/0/accept",
        {"module": "deals", "record_id": world.deal.pk},
    )
    assert got.status_code == 404
    assert api.post("/messages/999999/intelligence/meetings/0/dismiss").status_code == 404


def test_a_meeting_accepted_becomes_a_task(org, mail):
    world, _, _, meeting = mail
    api = ApiClient(org.rep)
    offers = api.get(f"/messages/{meeting.pk}/intelligence/suggestions").json()
    [offer] = offers["meetings"]
    assert "5 March at 14:30" in offer["text"]
    start = datetime.fromisoformat(offer["start"])
    assert (start.month, start.day, start.hour, start.minute) == (3, 5, 14, 30)
    assert {"module": "deals", "id": world.deal.pk, "name": "Acme renewal"} in offers["records"]
    url = f"/messages/{meeting.pk}/intelligence/meetings/0/accept"
    got = api.post(url, {"module": "accounts", "record_id": 999999})
    assert got.status_code == 422
    got = api.post(url, {"module": "deals", "record_id": world.deal.pk})
    assert got.status_code == 201, got.content
    task = Task.objects.get(pk=got.json()["task_id"])
    assert (task.module, task.record_id, task.owner, task.message_id) == (
        "deals",
        world.deal.pk,
        org.rep,
        meeting.pk,
    )
    assert task.due == start.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    assert "5 March at 14:30" in task.title
    assert api.post(url, {"module": "deals", "record_id": world.deal.pk}).status_code == 409
    after = api.get(f"/messages/{meeting.pk}/intelligence/suggestions").json()["meetings"][0]
    assert (after["state"], after["task_id"]) == ("accepted", task.pk)


def body(point: str) -> str:
    return f"Hello Rex,\n\n{point} Thank you for your help.\n\nJane\n"


def test_a_summary_is_shown_only_to_whoever_may_open_every_message_it_read(org, analyser, flow):
    world = w.build_world(org)
    peer_box = build.mailbox(org.peer)
    actions.set_sharing(None, org.peer, mode="private")
    with flow():
        first = w.receive(world, body("The 40 chairs are late by two weeks."), "Chairs")
        second = w.receive(world, body("We need them before Friday."), "Chairs", answers=first)
        private = build.deliver(
            peer_box, w.raw(body("The truck broke down near Leeds."), "Chairs", answers=second)
        )
        last = w.receive(world, body("Send a new date by tomorrow."), "Chairs", answers=private)
    row = Result.objects.get(message=last)
    summary = row.summary
    assert summary and private.pk in row.summary_of
    mine = ApiClient(org.rep).get(f"/messages/{last.pk}").json()["intelligence"]
    assert mine["summary"] == ""  # Rex may not open Pia's message it quotes
    assert mine["sentiment"]  # the rest of the result is his to see
    actions.set_sharing(None, org.peer, mode="public", share_with=[])
    shared = ApiClient(org.rep).get(f"/messages/{last.pk}").json()["intelligence"]
    assert shared["summary"] == summary


def test_results_are_given_only_for_the_messages_their_reader_may_open(org, mail):
    """The results' own question to the access layer, whoever asks for them: a peer and a
    manager of another branch get none of the rep's mail, his manager all of it."""
    _, complaint, question, meeting = mail
    ids = [complaint.pk, question.pk, meeting.pk]
    assert set(queries.for_messages(org.manager, ids)) == set(ids)
    for user in (org.peer, org.outsider_manager):
        assert queries.for_messages(user, ids) == {}
