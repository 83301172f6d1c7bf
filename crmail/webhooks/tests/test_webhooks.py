"""Webhooks end to end: mail from a contact reaches an administrator's endpoint as one
signed call that the ``standardwebhooks`` package verifies; a failing receiver is retried,
an endpoint that keeps failing is turned off and administrators are told; private
addresses are refused unless allowed; the secret is never shown again or logged."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from crmail.events import dispatch, outbox
from crmail.events.kinds import RecordCreated
from crmail.events.models import ConsumerState
from crmail.linking.tests.mail import ingest, raw_mail
from crmail.webhooks import actions, deliver, send
from crmail.webhooks.models import Delivery, Endpoint, State
from crmail.webhooks.tests.receiver import receiver
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_mail_from_a_contact_is_one_signed_message_linked_call(
    org, django_capture_on_commit_callbacks
):
    jane = f.contact(org.rep, "jane@acme.test")
    with receiver() as hook:
        endpoint, secret = actions.create_endpoint(hook.url, ["message.linked"], by=org.admin)
        with django_capture_on_commit_callbacks(execute=True):
            (message,) = ingest(raw_mail("jane@acme.test", ["rep@crmail.test"]), link=False)
        # The consumer handed the same events again (at least once): no second call.
        ConsumerState.objects.filter(name="webhooks").update(position=0)
        with django_capture_on_commit_callbacks(execute=True):
            assert dispatch.dispatch("webhooks") > 0
    (call,) = hook.calls
    body = call.verified(secret)
    assert body["type"] == "message.linked"
    assert body["data"] == {
        "message_id": message.pk,
        "module": "contacts",
        "record_id": jane.pk,
        "reason": "address",
        "actor_id": None,
    }
    assert call.path == "/hook"
    assert call.headers["webhook-id"].startswith("evt_")
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert (delivery.state, delivery.attempts, delivery.status_code) == (State.DELIVERED, 1, 200)
    assert delivery.response_excerpt == '{"ok": true}'


def test_only_enabled_endpoints_of_the_kind_get_a_delivery(org, django_capture_on_commit_callbacks):
    f.contact(org.rep, "jane@acme.test")
    with receiver() as hook:
        wanted, _ = actions.create_endpoint(hook.url, ["message.linked"], by=org.admin)
        actions.create_endpoint(hook.url, ["deal.stage_changed"], by=org.admin)
        off, _ = actions.create_endpoint(hook.url, ["message.linked"], by=org.admin)
        actions.set_enabled(off, False, by=org.admin)
        with django_capture_on_commit_callbacks(execute=True):
            ingest(raw_mail("jane@acme.test", ["rep@crmail.test"]), link=False)
    assert [d.endpoint_id for d in Delivery.objects.all()] == [wanted.pk]
    assert len(hook.calls) == 1


def test_a_receiver_answering_500_gets_the_same_call_again(org, django_capture_on_commit_callbacks):
    with receiver() as hook:
        hook.script = [500]
        endpoint, secret = actions.create_endpoint(hook.url, ["record.created"], by=org.admin)
        with django_capture_on_commit_callbacks(execute=True):
            outbox.record(RecordCreated(module="contacts", record_id=7))
        delivery = Delivery.objects.get(endpoint=endpoint)
        assert (delivery.state, delivery.attempts, delivery.status_code) == (State.FAILED, 1, 500)
        assert delivery.error == "The endpoint answered 500."
        assert delivery.next_try_at - delivery.last_tried_at == timedelta(seconds=5)
        # Not due yet: nothing is sent; after its wait it is.
        assert deliver.send_due(endpoint.pk) == 0
        assert deliver.send_due(endpoint.pk, now=delivery.next_try_at) == 1
    first, second = hook.calls
    assert first.verified(secret) == second.verified(secret)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.status_code) == (State.DELIVERED, 2, 200)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_private_addresses_are_refused_unless_allowed(org, monkeypatch):
    with receiver() as hook:
        endpoint, _ = actions.create_endpoint(hook.url, ["record.created"], by=org.admin)
        delivery = actions.send_test(endpoint, by=org.admin)
        monkeypatch.setenv(send.ALLOW_PRIVATE, "0")
        assert deliver.attempt(delivery.pk) is False
        assert hook.calls == []
        delivery.refresh_from_db()
        assert delivery.status_code is None
        assert "private, loopback or reserved" in delivery.error
        assert send.ALLOW_PRIVATE in delivery.error
        # A name that resolves to loopback is refused the same way.
        port = hook.url.split(":")[2].split("/")[0]
        assert "private" in send.post(f"http://localhost:{port}/hook", b"{}", {}).error
        # So is registering an address literal.
        with pytest.raises(actions.Invalid) as refused:
            actions.create_endpoint(
                "http://169.254.169.254/latest", ["record.created"], by=org.admin
            )
        assert refused.value.errors[0]["field"] == "url"
        monkeypatch.setenv(send.ALLOW_PRIVATE, "1")
        assert deliver.attempt(delivery.pk, now=delivery.next_try_at + timedelta(minutes=1))
    assert len(hook.calls) == 1


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "127.0.0.1",
        "169.254.169.254",
        "224.0.0.1",
        "::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "240.0.0.1",
        "100.64.0.1",
    ],
)
def test_refused_address_literals(address, monkeypatch):
    monkeypatch.setenv(send.ALLOW_PRIVATE, "0")
    host = f"[{address}]" if ":" in address else address
    assert "private" in (send.url_problem(f"https://{host}/hook") or "")


@pytest.mark.parametrize(
    "url, words",
    [
        ("ftp://hooks.example.com/x", "Only http:// and https://"),
        ("https://user:pw@hooks.example.com/x", "no user name or password"),
        ("https:///x", "needs a host name"),
        ("https://hooks.example.com/a b", "spaces"),
        ("not a url", "spaces"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
    ],
)
def test_bad_urls_are_refused_in_words(url, words):
    assert words in (send.url_problem(url) or "")


def _fail_until(endpoint: Endpoint, delivery: Delivery, stop) -> None:  # type: ignore[no-untyped-def]
    """Attempt ``delivery`` at each of its retry times until ``stop()``."""
    for _ in range(20):
        delivery.refresh_from_db()
        endpoint.refresh_from_db()
        if stop() or delivery.next_try_at is None:
            return
        deliver.attempt(delivery.pk, now=delivery.next_try_at)


def test_an_endpoint_failing_for_a_day_is_turned_off_and_admins_are_told(org):
    with receiver() as hook:
        hook.script = [503] * 50
        endpoint, _ = actions.create_endpoint(hook.url, ["record.created"], by=org.admin)
        delivery = actions.send_test(endpoint, by=org.admin)
        _fail_until(endpoint, delivery, lambda: not endpoint.enabled)
        calls = len(hook.calls)
    assert not endpoint.enabled
    assert endpoint.disabled_reason == "Every delivery attempt failed for a day."
    # Retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h: the last, 27 h after the
    # first, is past a day of failing.
    assert calls == 8 and delivery.attempts == 8
    assert deliver.send_due(endpoint.pk, now=timezone.now() + timedelta(days=3)) == 0

    admin, rep = Client(), Client()
    admin.force_login(org.admin)
    rep.force_login(org.rep)
    banner = "crmail turned off a webhook"
    assert banner in admin.get("/").content.decode()
    assert banner not in rep.get("/").content.decode()
    actions.set_enabled(endpoint, True, by=org.admin)
    assert banner not in admin.get("/").content.decode()
    endpoint.refresh_from_db()
    assert endpoint.disabled_reason == "" and endpoint.failing_since is None


def test_twenty_deliveries_given_up_in_a_row_turn_an_endpoint_off(org):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint, _ = actions.create_endpoint(
        f"http://127.0.0.1:{port}/closed", ["record.created"], by=org.admin
    )
    Endpoint.objects.filter(pk=endpoint.pk).update(
        given_up_in_a_row=19, failing_since=timezone.now()
    )
    delivery = actions.send_test(endpoint, by=org.admin)
    last = len(deliver.RETRY_DELAYS)
    Delivery.objects.filter(pk=delivery.pk).update(attempts=last, state=State.FAILED)
    assert deliver.attempt(delivery.pk) is False
    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert delivery.state == State.GIVEN_UP and delivery.next_try_at is None
    assert "Could not connect" in delivery.error
    assert not endpoint.enabled
    assert endpoint.disabled_reason.startswith("20 deliveries in a row were given up")


def test_the_secret_is_stored_encrypted_and_never_logged_or_shown_again(
    org, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {f.token(org.admin)}")
    with receiver() as hook:
        hook.script = [500]
        made = api.post(
            "/api/v1/webhooks",
            {"url": hook.url, "events": ["record.created"]},
            content_type="application/json",
        )
        assert made.status_code == 201
        secret = made.json()["secret"]
        assert secret.startswith("whsec_")
        pk = made.json()["id"]
        with django_capture_on_commit_callbacks(execute=True):
            outbox.record(RecordCreated(module="contacts", record_id=7))
            api.post(f"/api/v1/webhooks/{pk}/test")
        assert len(hook.calls) == 2
        pages = Client()
        pages.force_login(org.admin)
        answers = [
            api.get("/api/v1/webhooks").content,
            api.get(f"/api/v1/webhooks/{pk}").content,
            api.get(f"/api/v1/webhooks/{pk}/deliveries").content,
            api.patch(
                f"/api/v1/webhooks/{pk}", {"enabled": True}, content_type="application/json"
            ).content,
            pages.get("/settings/webhooks/").content,
            pages.get(f"/settings/webhooks/{pk}/").content,
            pages.get(f"/settings/webhooks/{pk}/edit/").content,
        ]
    key = secret.removeprefix("whsec_")
    for answer in answers:
        assert key.encode() not in answer
    assert key not in caplog.text
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_endpoint WHERE id = %s", [pk])
        (stored,) = cursor.fetchone()
    assert key not in stored
    assert Endpoint.objects.get(pk=pk).secret == secret


def test_crmail_check_reports_whether_private_addresses_are_allowed(capsys, org, monkeypatch):
    from crmail.config.tests.test_cli import run

    status, _, err = run(capsys, "check")
    assert status == 0 and "CRMAIL_WEBHOOKS_ALLOW_PRIVATE is on" in err
    monkeypatch.setenv(send.ALLOW_PRIVATE, "0")
    status, out, err = run(capsys, "check")
    assert "Webhooks call only public addresses." in out
    assert "CRMAIL_WEBHOOKS_ALLOW_PRIVATE" not in err
