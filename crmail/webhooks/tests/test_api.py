"""``/api/v1/webhooks``: administrators add, read, change and delete endpoints, read the
delivery log and send a test; the secret is answered once; others get 403; bad input a
422 naming the field."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from crmail.webhooks.models import Delivery, Endpoint
from crmail.webhooks.tests.receiver import receiver
from tests import factories as f

pytestmark = pytest.mark.django_db


def _api(user) -> Client:  # type: ignore[no-untyped-def]
    return Client(HTTP_AUTHORIZATION=f"Bearer {f.token(user)}")


def _send(client: Client, method: str, path: str, body: object = None):  # type: ignore[no-untyped-def]
    call = getattr(client, method)
    if body is None:
        return call(path)
    return call(path, data=json.dumps(body), content_type="application/json")


def test_an_administrator_manages_an_endpoint(org, django_capture_on_commit_callbacks):
    api = _api(org.admin)
    with receiver() as hook:
        made = _send(
            api,
            "post",
            "/api/v1/webhooks",
            {"url": hook.url, "events": ["message.linked", "deal.stage_changed"]},
        )
        assert made.status_code == 201
        body = made.json()
        pk, secret = body["id"], body["secret"]
        assert body["events"] == ["message.linked", "deal.stage_changed"]
        assert body["enabled"] is True

        read = api.get(f"/api/v1/webhooks/{pk}").json()
        assert "secret" not in read and read["url"] == hook.url
        listed = api.get("/api/v1/webhooks").json()
        assert listed["count"] == 1 and [e["id"] for e in listed["items"]] == [pk]

        changed = _send(
            api, "patch", f"/api/v1/webhooks/{pk}", {"events": ["record.created"], "enabled": False}
        )
        assert changed.status_code == 200
        assert changed.json()["events"] == ["record.created"] and changed.json()["enabled"] is False
        assert _send(api, "post", f"/api/v1/webhooks/{pk}/test").status_code == 403  # it is off

        _send(api, "patch", f"/api/v1/webhooks/{pk}", {"enabled": True})
        with django_capture_on_commit_callbacks(execute=True):
            tested = _send(api, "post", f"/api/v1/webhooks/{pk}/test")
        assert tested.status_code == 202
        assert tested.json()["type"] == "webhook.test"
        (call,) = hook.calls
        assert call.verified(secret)["type"] == "webhook.test"

    log = api.get(f"/api/v1/webhooks/{pk}/deliveries").json()
    assert log["count"] == 1
    (entry,) = log["items"]
    assert entry["state"] == "delivered" and entry["status_code"] == 200
    assert entry["attempts"] == 1 and entry["latency_ms"] is not None
    assert entry["webhook_id"] == call.headers["webhook-id"]

    assert _send(api, "delete", f"/api/v1/webhooks/{pk}").status_code == 204
    assert api.get(f"/api/v1/webhooks/{pk}").status_code == 404
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"url": "ftp://hooks.example.com/", "events": ["message.linked"]}, "url", "http"),
        (
            {"url": "https://hooks.example.com/", "events": ["message.eaten"]},
            "events",
            "message.eaten",
        ),
        ({"url": "https://hooks.example.com/", "events": []}, "events", "at least one"),
        ({"url": "https://hooks.example.com/"}, "events", "required"),
        ({"url": "https://hooks.example.com/\ud800", "events": ["message.linked"]}, "url", ""),
        (
            {"url": "https://hooks.example.com/", "events": ["message.linked"], "secret": "x"},
            "secret",
            "Unknown",
        ),
    ],
)
def test_bad_input_answers_422_naming_the_field(org, body, field, words):
    answer = _send(_api(org.admin), "post", "/api/v1/webhooks", body)
    assert answer.status_code == 422
    (problem,) = [p for p in answer.json()["detail"] if p["field"] == field]
    assert words in problem["message"]
    assert not Endpoint.objects.exists()


def test_others_may_not_see_or_change_webhooks(org):
    admin = _api(org.admin)
    pk = _send(
        admin,
        "post",
        "/api/v1/webhooks",
        {"url": "https://hooks.example.com/", "events": ["record.created"]},
    ).json()["id"]
    rep = _api(org.rep)
    for method, path, body in [
        ("get", "/api/v1/webhooks", None),
        (
            "post",
            "/api/v1/webhooks",
            {"url": "https://hooks.example.com/", "events": ["record.created"]},
        ),
        ("get", f"/api/v1/webhooks/{pk}", None),
        ("patch", f"/api/v1/webhooks/{pk}", {"enabled": False}),
        ("delete", f"/api/v1/webhooks/{pk}", None),
        ("get", f"/api/v1/webhooks/{pk}/deliveries", None),
        ("post", f"/api/v1/webhooks/{pk}/test", None),
    ]:
        answer = _send(rep, method, path, body)
        assert answer.status_code == 403, (method, path)
        assert answer.json()["detail"] == "Only administrators manage webhooks."
    assert Endpoint.objects.get().enabled
    assert _send(admin, "get", "/api/v1/webhooks/999").status_code == 404
