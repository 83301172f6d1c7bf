"""Words a salesperson reads: one date format everywhere, counts that agree, plain help."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crmail.config import dates
from crmail.config.words import count
from crmail.crm.models import Contact
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_dates_and_counts_in_words(settings):
    settings.TIME_ZONE = "UTC"
    moment = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
    assert dates.when(moment) == "3 Dec 2026, 14:05"
    assert dates.day(moment) == "3 Dec 2026"
    assert dates.when(None) == ""
    assert [count(n, "folder") for n in (0, 1, 2)] == ["0 folders", "1 folder", "2 folders"]
    assert count(1, "mailbox", "mailboxes") == "1 mailbox"
    assert count(3, "mailbox", "mailboxes") == "3 mailboxes"


def test_a_record_page_writes_its_dates_the_one_way(client, org, settings):
    settings.TIME_ZONE = "UTC"
    jane = f.contact(org.rep, "jane@customer.test")
    moment = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
    Contact.objects.filter(pk=jane.pk).update(created_at=moment, modified_at=moment)
    client.force_login(org.rep)
    page = client.get(f"/contacts/{jane.pk}/").content.decode()
    assert "<dt>Created</dt><dd>3 Dec 2026, 14:05</dd>" in page
    listing = client.get("/contacts/").content.decode()
    assert "3 Dec 2026" in listing


def test_help_texts_say_one_per_line(client, org):
    client.force_login(org.rep)
    page = client.get("/settings/mail/connect/").content.decode()
    assert "One per line" in page and "One a line" not in page
