"""``/inbox/``: each row's links and dates, the tabs' counts, and a number of queries that
does not grow with the rows."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crmail.config import dates
from crmail.mailboxes.tests.test_inbox import connect, put
from crmail.people.models import ModuleDefault
from tests import factories as f

pytestmark = pytest.mark.django_db


def rows(html: str) -> list[str]:
    return re.findall(r'<li class="inbox-row.*?</li>', html, re.S)


def test_each_row_links_its_message_its_replies_and_its_records(org, client_for):
    rep = org.rep
    box = connect(rep)
    buyer = f.contact(rep, "buyer@example.com")
    deal = f.deal(rep, "Big one", contact=buyer, amount=Decimal("5000"))
    known = put(box, on=(buyer,), sender="buyer@example.com")
    stranger = put(box, sender="new@example.com")
    response = client_for(rep).get(reverse("web:inbox"))
    assert response.status_code == 200
    html = response.content.decode()
    got = {m: row for row in rows(html) for m in (known.pk, stranger.pk) if f"/{m}/" in row}

    opened = reverse("web:message", args=[known.pk])
    compose = reverse("web:compose")
    row = got[known.pk]
    assert f'data-open="{opened}"' in row and f'href="{opened}"' in row
    for mode in ("reply", "all", "forward"):
        assert f"{compose}?message={known.pk}&amp;mode={mode}" in row
    assert f'href="{reverse("web:record_detail", args=["deals", deal.pk])}"' in row
    assert f'href="{reverse("web:record_detail", args=["contacts", buyer.pk])}"' in row
    assert f'datetime="{known.date.isoformat()}">{dates.when(known.date)}</time>' in row
    assert "Add as contact" not in row

    row = got[stranger.pk]
    for module in ("contacts", "leads"):
        assert reverse("web:message_sender_create", args=[stranger.pk, module]) in row
    assert 'title="0 unread of 1">Deals' in html
    assert 'title="0 unread of 1">Others' in html


def test_the_page_takes_the_same_queries_for_two_rows_or_forty(
    org, client_for, django_assert_max_num_queries
):
    rep = org.rep
    box = connect(rep)
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "private"})
    buyer = f.contact(rep, "buyer@example.com")
    f.deal(rep, "Big one", contact=buyer, amount=Decimal("5000"))
    put(box, on=(buyer,))
    put(box, sender="new@example.com")
    client = client_for(rep)
    with CaptureQueriesContext(connection) as few:
        assert len(rows(client.get(reverse("web:inbox")).content.decode())) == 2
    lead = f.lead(rep, "lead@example.com")
    for n in range(38):
        put(box, on=((buyer,), (lead,), ())[n % 3], sender=f"s{n}@example.com")
    # 24: with email intelligence's switch and the rows' badges (two queries a page).
    with django_assert_max_num_queries(24), CaptureQueriesContext(connection) as many:
        assert len(rows(client.get(reverse("web:inbox")).content.decode())) == 40
    assert len(many) == len(few) + 1  # the leads' names, now that a row shows one
    defaults = [q for q in many.captured_queries if "people_moduledefault" in q["sql"]]
    assert len(defaults) == 1  # the organisation-wide defaults, once per request


def two_rows(org, client_for, first: dict, second: dict) -> tuple[str, str]:
    """The inbox rows of two messages in the rep's mailbox, their fields set to ``first``
    and ``second``."""
    from crmail.mail.models import Message

    box = connect(org.rep)
    messages = [put(box), put(box)]
    for message, fields in zip(messages, (first, second), strict=True):
        Message.objects.filter(pk=message.pk).update(**fields)
    html = client_for(org.rep).get(reverse("web:inbox")).content.decode()
    got = {m.pk: row for row in rows(html) for m in messages if f"/{m.pk}/" in row}
    return got[messages[0].pk], got[messages[1].pk]


def test_mail_a_sync_is_still_reading_says_so_instead_of_no_subject(org, client_for):
    reading, empty = two_rows(
        org, client_for, {"subject": "", "parse_state": "pending"}, {"subject": ""}
    )
    assert "Processing…" in reading and "(no subject)" not in reading
    assert "(no subject)" in empty and "Processing…" not in empty


def test_mail_whose_body_is_still_processing_says_so_where_its_snippet_goes(org, client_for):
    # A large first sync lists mail with its header fields; the body follows (064).
    processing, done = two_rows(
        org,
        client_for,
        {"snippet": "", "parse_state": "processing"},
        {"snippet": "Thanks for the offer"},
    )
    assert "Processing…" in processing
    assert "Thanks for the offer" in done and "Processing…" not in done
