"""Email insights through the API: the switch, tracked sending, a message's opens and
clicks (as its visibility says), templates' rates, a contact's best time, and mail sent
later (schedule, list, cancel)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from crmail.emailtemplates import actions as template_actions
from crmail.insights.models import InsightsSetting, Open, ScheduledSend
from crmail.mailboxes.models import SentMessage
from crmail.web.tests.test_compose import sending_mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, user):  # type: ignore[no-untyped-def]
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {f.token(user)}")

    def get(self, path):  # type: ignore[no-untyped-def]
        return self.client.get(f"/api/v1{path}")

    def post(self, path, body=None):  # type: ignore[no-untyped-def]
        return self.client.post(f"/api/v1{path}", body or {}, content_type="application/json")

    def put(self, path, body):  # type: ignore[no-untyped-def]
        return self.client.put(f"/api/v1{path}", body, content_type="application/json")


@pytest.fixture
def world(org, smtp_sink, settings):
    settings.CRMAIL_PUBLIC_URL = "https://crm.example.com"
    sending_mailbox(org.rep, smtp_sink.port)
    grace = f.contact(org.rep, "grace@client.example", first_name="Grace", last_name="Hopper")
    return org, grace, smtp_sink


def message(**extra):  # type: ignore[no-untyped-def]
    return {
        "from": "rep@crmail.test",
        "to": ["grace@client.example"],
        "subject": "Hi",
        "text": "See https://acme.example/x",
        **extra,
    }


def test_administrators_switch_tracking_and_sent_mail_is_then_tracked(world):
    org, _grace, sink = world
    rep, admin = Api(org.rep), Api(org.admin)
    assert rep.get("/insights/settings").json()["tracking"] is False
    assert rep.put("/insights/settings", {"tracking": True}).status_code == 403
    on = admin.put("/insights/settings", {"tracking": True}).json()
    assert on == {
        "tracking": True,
        "public_url": "https://crm.example.com",
        "active": True,
        "words": on["words"],
    }
    assert rep.post("/messages/send", message()).json()["tracked"] is True
    assert rep.post("/messages/send", message(track=False)).json()["tracked"] is False
    first, second = sink.wait_for(2, 5)
    assert b"/t/o/" in first.data and b"/t/o/" not in second.data


def test_a_messages_opens_and_clicks_show_to_whoever_may_see_it(world):
    org, _grace, _sink = world
    InsightsSetting.objects.create(tracking=True)
    sent_id = Api(org.rep).post("/messages/send", message()).json()["message_id"]
    sent = SentMessage.objects.get(message_id=sent_id)
    Open.objects.create(sent=sent, at=timezone.now(), client="gmail")
    Open.objects.create(
        sent=sent,
        at=timezone.now(),
        client="automated",
        scanner=True,
        scanner_reason="a mail-security scanner (Mimecast)",
    )
    got = Api(org.rep).get(f"/messages/{sent_id}/insights").json()
    assert (got["tracked"], got["opens"], got["clicks"]) == (True, 1, 0)
    assert [o["scanner"] for o in got["opened"]] == [False, True]
    assert Api(org.outsider_manager).get(f"/messages/{sent_id}/insights").status_code == 404


def test_template_rates_and_the_best_time(world):
    org, grace, _sink = world
    InsightsSetting.objects.create(tracking=True)
    template = template_actions.do_create_template(org.rep, name="Intro", subject="Hi", body="Yo")
    api = Api(org.rep)
    body = {"from": "rep@crmail.test", "to": ["grace@client.example"], "template_id": template.pk}
    sent_id = api.post("/messages/send", body).json()["message_id"]
    sent = SentMessage.objects.get(message_id=sent_id)
    for day in (3, 10, 17):
        Open.objects.create(
            sent=sent, at=datetime(2026, 3, day, 9, 5, tzinfo=UTC), client="desktop"
        )
    [rates] = api.get("/insights/templates").json()["items"]
    assert (rates["sent"], rates["opened"], rates["open_rate"], rates["reply_rate"]) == (
        1,
        1,
        100,
        0,
    )
    best = api.get(f"/contacts/{grace.pk}/best-time").json()
    assert best["best"] == {"weekday": 1, "hour": 9} and best["opens"] == 3
    assert len(best["grid"]) == 7 and best["grid"][1][9] == 3


def test_mail_is_scheduled_listed_and_cancelled(world):
    org, _grace, sink = world
    api = Api(org.rep)
    refused = api.post("/scheduled", message(best_time=True))
    assert refused.status_code == 422 and "no best time" in refused.text
    assert api.post("/scheduled", message()).status_code == 422  # no send_at
    at = (timezone.now() + timedelta(hours=3)).isoformat()
    made = api.post("/scheduled", message(send_at=at))
    assert made.status_code == 201 and made.json()["state"] == "scheduled"
    pk = made.json()["id"]
    assert [r["id"] for r in api.get("/scheduled").json()["items"]] == [pk]
    assert Api(org.peer).get(f"/scheduled/{pk}").status_code == 404
    assert api.post(f"/scheduled/{pk}/cancel").json()["state"] == "cancelled"
    assert api.post(f"/scheduled/{pk}/cancel").status_code == 409
    assert ScheduledSend.objects.get().state == "cancelled" and not sink.wait_for(0, 0)
