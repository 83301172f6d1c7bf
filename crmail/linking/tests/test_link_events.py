"""Linking reads the outbox: mail parsed while linking fails is linked when it is retried,
and every new link is an event for what comes after (notifications, workflows)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crmail.events import dispatch
from crmail.events.models import Event, Failure
from crmail.linking import links
from crmail.linking.tests.mail import ingest, raw_mail
from tests import factories as f

pytestmark = pytest.mark.django_db


def linked_to(contact) -> set[int]:  # type: ignore[no-untyped-def]
    return set(
        links.Link.objects.filter(module="contacts", record_id=contact.pk).values_list(
            "message_id", flat=True
        )
    )


def test_mail_parsed_while_linking_fails_is_linked_when_retried(
    org, monkeypatch, django_capture_on_commit_callbacks
):
    jane = f.contact(org.rep, "jane@acme.test")
    real = links.link_messages

    def broken(ids):  # type: ignore[no-untyped-def]
        raise RuntimeError("the database went away")

    monkeypatch.setattr(links, "link_messages", broken)
    with django_capture_on_commit_callbacks(execute=True):
        (message,) = ingest(raw_mail("jane@acme.test", ["me@crmail.test"]), link=False)
    assert linked_to(jane) == set()
    failure = Failure.objects.get(consumer="linking")
    assert failure.event.kind == "message.parsed" and "database went away" in failure.error

    monkeypatch.setattr(links, "link_messages", real)
    assert dispatch.retry_due("linking", now=timezone.now() + timedelta(minutes=1)) == 1
    assert linked_to(jane) == {message.pk}
    assert not Failure.objects.exists()


def test_each_new_link_is_an_event_and_linking_again_records_none(
    org, django_capture_on_commit_callbacks
):
    jane = f.contact(org.rep, "jane@acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        (message,) = ingest(raw_mail("jane@acme.test", ["me@crmail.test"]), link=False)
    linked = Event.objects.filter(kind="message.linked")
    assert [(e.data["message_id"], e.data["module"], e.data["record_id"]) for e in linked] == [
        (message.pk, "contacts", jane.pk)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        links.link_messages([message.pk])
    assert linked.count() == 1
