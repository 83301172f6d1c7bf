"""The daily digest through a real SMTP server: sent once a day at the digest hour to the
user's own address, only when they asked for it, something is unread and a mailbox sends."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes, policy

import pytest
from django.utils import timezone

from crmail.api.tests.test_send import sending_mailbox
from crmail.config import durable
from crmail.notifications import actions, digest
from crmail.notifications.models import Notification
from crmail.notifications.tests.factories import notification

pytestmark = pytest.mark.django_db


def at(hour: int) -> datetime:
    return timezone.localtime().replace(hour=hour, minute=5, second=0, microsecond=0)


def test_the_digest_goes_out_once_a_day_at_its_hour(org, smtp_sink, monkeypatch):
    monkeypatch.setenv("CRMAIL_DIGEST_HOUR", "7")
    sending_mailbox(org.rep, smtp_sink)
    actions.set_daily_digest(org.rep, True)
    notification(org.rep, "New mail from Jane Quinn (Contact): Quote for May")
    read = notification(org.rep, "New mail from Sam Lee (Lead): Already read")
    Notification.objects.filter(pk=read.pk).update(read_at=timezone.now())
    notification(org.peer, "New mail from someone@x.test: Not Rex's")  # peer: no digest

    assert digest.send_due(at(6)).sent == 0  # before the hour
    assert smtp_sink.messages == []
    assert digest.send_due(at(7)).sent == 1
    (sent,) = smtp_sink.wait_for(1)
    mail = message_from_bytes(sent.data, policy=policy.default)
    assert (
        mail["To"] == "rep@crmail.test" and mail["From"].addresses[0].addr_spec == "rep@crmail.test"
    )
    assert mail["Subject"] == "crmail: 1 unread message from customers"
    text = mail.get_body(("plain",)).get_content()
    assert "New mail from Jane Quinn (Contact): Quote for May" in text
    assert "Already read" not in text and "Not Rex's" not in text

    assert digest.send_due(at(8)).sent == 0  # once a day
    assert len(smtp_sink.messages) == 1


def test_the_days_claim_is_on_disk_before_the_digest_goes(org, smtp_sink, monkeypatch):
    # SQLite syncs its log only at checkpoints: after a power cut mid-send, a claim that
    # was not on disk would come back and the digest go twice.
    monkeypatch.setenv("CRMAIL_DIGEST_HOUR", "7")
    sending_mailbox(org.rep, smtp_sink)
    actions.set_daily_digest(org.rep, True)
    notification(org.rep, "New mail from Jane Quinn (Contact): Quote for May")
    synced = []
    monkeypatch.setattr(durable, "sync_commits", lambda: synced.append(len(smtp_sink.messages)))
    assert digest.send_due(at(7)).sent == 1
    assert synced == [0]  # once, before anything was sent
    assert len(smtp_sink.wait_for(1)) == 1


def test_no_digest_without_the_choice_anything_unread_or_a_sending_mailbox(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink)
    notification(org.rep)
    assert digest.send_due(at(23)).sent == 0  # not asked for: off by default

    actions.set_daily_digest(org.peer, True)  # asked for, nothing unread
    actions.set_daily_digest(org.manager, True)  # something unread, no mailbox
    notification(org.manager)
    outcome = digest.send_due(at(23))
    assert (outcome.sent, outcome.nothing_unread, outcome.no_mailbox) == (0, 1, 1)
    assert smtp_sink.messages == []

    old = notification(org.rep)
    Notification.objects.filter(user=org.rep).update(created_at=timezone.now() - timedelta(days=2))
    actions.set_daily_digest(org.rep, True)
    assert digest.send_due(at(23)).nothing_unread == 1  # only the last day's count
    assert old.pk
