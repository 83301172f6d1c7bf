"""The sales inbox by tag: a conversation holds its messages' tags, and a tag filters it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crmail.mail import tags
from crmail.mail.models import Message
from crmail.mailboxes import inbox
from crmail.mailboxes.tests.test_inbox import connect, put, streams
from tests import factories as f

pytestmark = pytest.mark.django_db


def tag(message: Message, *names: str) -> None:
    tags.tag_messages([message.pk], names, actor=None)


def test_a_tag_keeps_the_conversations_with_a_tagged_message(org):
    rep = org.rep
    box = connect(rep)
    buyer = f.contact(rep, "buyer@example.com")
    f.deal(rep, "Fleet", contact=buyer, amount=Decimal("9000"))
    first = put(box, on=(buyer,), seen=False)
    answer = put(box, thread=first.thread, on=(buyer,))  # the same conversation
    lone = put(box)
    untagged = put(box, sender="friend@example.com")
    tag(first, "Quote")
    tag(lone, "quote", "Urgent")

    page = inbox.page(rep, tag="QUOTE")
    assert [e.message.pk for e in page.items] == [lone.pk, answer.pk]
    assert page.count == 2
    assert {e.message.pk: e.tags for e in page.items} == {
        answer.pk: ["Quote"],  # its thread's tag, from an older message of it
        lone.pk: ["Quote", "Urgent"],
    }
    deals = inbox.page(rep, stream="deals", tag="Quote")
    assert [e.message.pk for e in deals.items] == [answer.pk] and deals.count == 1
    others = inbox.page(rep, stream="others", tag="quote")
    assert [e.message.pk for e in others.items] == [lone.pk]
    assert streams(rep, tag="Quote") == {
        "deals": (1, 1),
        "contacts": (0, 0),
        "leads": (0, 0),
        "others": (0, 1),
    }
    assert inbox.page(rep, tag="Quote", unread=True).count == 1
    everything = {e.message.pk: e.tags for e in inbox.page(rep).items}
    assert everything[untagged.pk] == []


def test_an_unknown_tag_finds_nothing(org):
    box = connect(org.rep)
    put(box)
    assert inbox.page(org.rep, tag="never used").count == 0
    assert all(s.total == 0 for s in inbox.stream_counts(org.rep, tag="never used"))


def test_a_tag_on_a_copy_in_another_folder_or_mailbox_does_not_reach_this_one(org):
    rep = org.rep
    box = connect(rep)
    archived = put(box, remote_folder="Archive")
    tag(archived, "Quote")
    theirs = put(connect(org.peer))
    tag(theirs, "Quote")
    assert inbox.page(rep, tag="Quote").count == 0
    archive = box.folders.get(remote_id="Archive")
    assert [e.message.pk for e in inbox.page(rep, folder=archive, tag="Quote").items] == [
        archived.pk
    ]


def test_a_page_reads_tags_in_a_fixed_number_of_statements(org):
    box = connect(org.rep)
    for n in range(3):
        tag(put(box), "Quote", f"n{n}")

    def statements(limit: int) -> int:
        with CaptureQueriesContext(connection) as ctx:
            inbox.page(org.rep, tag="Quote", limit=limit)
        return len(ctx.captured_queries)

    few = statements(1)
    for n in range(3, 8):
        tag(put(box), "Quote", f"n{n}")
    assert statements(8) == few
