"""A contact's best time to be written to: an hour-of-week heatmap from their opens (not
scanners') and replies, in their time zone where known, and the next such hour."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import pytest

from crmail.insights import queries
from crmail.insights.models import Open
from crmail.insights.tracking import Tracker
from crmail.mail.models import Message
from crmail.mailboxes.sending import send_message
from tests import factories as f

from .world import draft, inbound

pytestmark = pytest.mark.django_db
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def ann(on):
    """Ann in Paris, written to once from crmail, with a known set of events: three opens
    on Tuesday mornings, one on a Thursday afternoon, one scanner's at night, and a reply
    on a Tuesday morning (all in UTC here; Paris is an hour ahead in March)."""
    contact = f.contact(on.user, "ann@acme.example", first_name="Ann", last_name="Lee")
    contact.time_zone = "Europe/Paris"
    contact.save(update_fields=["time_zone"])
    sent = send_message(on.user, draft(), mailbox=on.mailbox, tracking=Tracker(track=True))
    on.sink.wait_for(1, 5)
    for when, scanner in [
        ("2026-03-03 08:15", False),  # Tue 09:15 in Paris
        ("2026-03-03 08:50", False),  # Tue 09:50
        ("2026-03-10 08:05", False),  # Tue 09:05
        ("2026-03-05 13:30", False),  # Thu 14:30
        ("2026-03-02 01:00", True),  # Mon 02:00: a scanner, left out
    ]:
        Open.objects.create(sent=sent, at=at(when), client="desktop", scanner=scanner)
    header = Message.objects.get(pk=sent.message_id).message_id
    inbound(
        on, "Ann Lee <ann@acme.example>", date="Tue, 10 Mar 2026 08:40:00 +0000", in_reply_to=header
    )
    # Mail from Ann that answers nothing is not a reply: left out.
    inbound(on, "ann@acme.example", date="Sun, 08 Mar 2026 22:00:00 +0000")
    return contact


def test_the_heatmap_counts_opens_and_replies_by_hour_of_week_in_the_contacts_zone(on, ann):
    heat = queries.heatmap(on.user, ann)
    assert heat.zone.key == "Europe/Paris" and heat.own_zone
    assert (heat.opens, heat.replies) == (4, 1)
    cells = {(d, h): n for d in range(7) for h in range(24) if (n := heat.counts[d][h])}
    assert cells == {(1, 9): 4, (3, 14): 1}
    assert heat.best == (1, 9)
    assert heat.best_words == "Tuesdays, 09:00 to 10:00 (Europe/Paris)"
    drawn = {
        (d, h): (level, best) for d, (_, row) in enumerate(heat.rows()) for h, _, level, best in row
    }
    assert drawn[1, 9] == (4, True) and drawn[3, 14] == (1, False) and drawn[0, 2] == (0, False)
    assert sum(best for _, best in drawn.values()) == 1


def test_without_the_contacts_zone_the_organisations_is_used(on, ann, settings):
    ann.time_zone = ""
    ann.save(update_fields=["time_zone"])
    settings.TIME_ZONE = "UTC"
    heat = queries.heatmap(on.user, ann)
    assert not heat.own_zone and heat.best == (1, 8)


def test_nobody_who_may_not_see_the_mail_learns_from_it(on, ann):
    stranger = f.user("stranger@crmail.test", sharing="private")
    assert queries.heatmap(stranger, ann).total == 0


def test_too_few_events_name_no_best_time(on):
    bob = f.contact(on.user, "bob@acme.example", first_name="Bob")
    heat = queries.heatmap(on.user, bob)
    assert heat.best is None
    assert heat.best_words.startswith("crmail knows no best time yet")


def test_the_next_best_hour_is_in_the_contacts_zone_across_a_clock_change():
    best = (1, 9)  # Tuesdays at nine
    # From a Monday noon (UTC) in winter: the next day, 09:00 in Paris is 08:00 UTC.
    assert queries.next_slot(best, PARIS, at("2026-03-09 12:00")) == at("2026-03-10 08:00")
    # Paris moves to summer time on 29 March: the Tuesday after, 09:00 is 07:00 UTC.
    assert queries.next_slot(best, PARIS, at("2026-03-28 12:00")) == at("2026-03-31 07:00")
    # Within a quarter of an hour of the slot: the week after.
    assert queries.next_slot(best, PARIS, at("2026-03-10 07:50")) == at("2026-03-17 08:00")
