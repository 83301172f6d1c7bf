"""Scheduled mail of a saved report (SPEC F17): the period just ended, to its owner, once,
with the owner's own figures, through a real SMTP server."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import message_from_bytes, policy

import pytest

from crmail.config import durable
from crmail.reports import saved, scheduled
from crmail.reports.models import SavedReport
from crmail.reports.queries import Filters
from crmail.reports.tests import world as w

pytestmark = pytest.mark.django_db

# Monday 3 August 2026, 9:00 in Berlin: after the hour (7 by default)
MONDAY = datetime(2026, 8, 3, 7, tzinfo=UTC)


@pytest.fixture
def world(org, settings, own_mail_sink) -> w.World:  # type: ignore[no-untyped-def]
    settings.TIME_ZONE = w.TIME_ZONE
    return w.build(org)


def text_of(raw: bytes) -> str:
    return message_from_bytes(raw, policy=policy.default).get_body().get_content()  # type: ignore[union-attr]


def test_the_periods_just_ended():
    assert scheduled.period_of("daily", date(2026, 8, 3)) == (date(2026, 8, 2), date(2026, 8, 3))
    assert scheduled.period_of("weekly", date(2026, 8, 5)) == (date(2026, 7, 27), date(2026, 8, 3))
    assert scheduled.period_of("monthly", date(2026, 8, 3)) == (date(2026, 7, 1), date(2026, 8, 1))
    assert scheduled.period_of("monthly", date(2026, 1, 1)) == (date(2025, 12, 1), date(2026, 1, 1))


def test_a_monthly_report_is_mailed_once_with_its_owners_figures(world, own_mail_sink):
    saved.save_report(world.users["olga"], "Olga monthly", "source", Filters(), schedule="monthly")
    saved.save_report(world.users["karl"], "Not mailed", "source", Filters())
    assert scheduled.send_due(datetime(2026, 8, 3, 4, tzinfo=UTC)).sent == 0  # 6:00 in Berlin
    assert scheduled.send_due(MONDAY).sent == 1
    got = own_mail_sink.wait_for(1)[0]
    assert got.rcpt_tos == [world.users["olga"].email]
    mail = message_from_bytes(got.data, policy=policy.default)
    assert mail["Subject"] == "Report: Olga monthly (2026-07-01 to 2026-07-31)"
    text = text_of(got.data)
    # In July (Berlin), Olga may open: late_june (Pat, POP3), graph (Gil) and the sent one.
    assert "3 messages: 2 inbound, 1 outbound." in text
    assert "POP3" in text and "Microsoft Graph" in text and "Sent from crmail" in text
    assert "IMAP " not in text  # Mark's copy of what he sent is not hers to count
    assert scheduled.send_due(MONDAY.replace(hour=8)).sent == 0  # once
    assert scheduled.send_due(datetime(2026, 8, 20, 9, tzinfo=UTC)).sent == 0  # same month
    assert scheduled.send_due(datetime(2026, 9, 1, 9, tzinfo=UTC)).sent == 1
    assert len(own_mail_sink.wait_for(2)) == 2


def test_the_periods_claim_is_on_disk_before_the_report_goes(world, own_mail_sink, monkeypatch):
    # SQLite syncs its log only at checkpoints: after a power cut mid-send, a claim that
    # was not on disk would come back and the report go twice.
    saved.save_report(world.users["olga"], "Olga monthly", "source", Filters(), schedule="monthly")
    synced = []
    monkeypatch.setattr(durable, "sync_commits", lambda: synced.append(len(own_mail_sink.messages)))
    assert scheduled.send_due(MONDAY).sent == 1
    assert synced == [0]  # once, before anything was sent
    assert len(own_mail_sink.wait_for(1)) == 1


def test_a_failure_gives_the_day_back(world, settings):
    report = saved.save_report(world.users["karl"], "Daily", "user", Filters(), schedule="daily")
    settings.CRMAIL_SMTP_URL = ""
    assert scheduled.send_due(MONDAY) == scheduled.Outcome(sent=0, failed=1)
    report.refresh_from_db()
    assert report.last_mailed_on is None


def test_a_deactivated_owner_gets_no_mail(world, own_mail_sink):
    saved.save_report(world.users["karl"], "Weekly", "user", Filters(), schedule="weekly")
    world.users["karl"].is_active = False
    world.users["karl"].save(update_fields=["is_active"])
    assert scheduled.send_due(MONDAY).sent == 0
    assert SavedReport.objects.get().last_mailed_on is None


def test_a_schedule_is_chosen_among_the_known_ones(world):
    from crmail.reports.queries import BadReport

    with pytest.raises(BadReport, match="Choose a schedule") as bad:
        saved.save_report(world.users["karl"], "Hourly", "user", Filters(), schedule="hourly")
    assert bad.value.field == "schedule"
