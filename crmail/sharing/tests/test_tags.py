"""Tags as viewers meet them: filtering a record's Emails list, and which tags a list of
tags may name (only those on mail the viewer may see)."""

from __future__ import annotations

import pytest

from crmail.linking.tests.record_mail import Scene, scene
from crmail.mail import tags
from crmail.sharing import emails
from crmail.sharing.tags import visible_tags

pytestmark = pytest.mark.django_db


@pytest.fixture
def s(org) -> Scene:  # type: ignore[no-untyped-def]
    found = scene(org)
    tags.tag_messages([found.first.pk, found.popped.pk], ["Quote"], actor=None)
    tags.tag_messages([found.claires.pk], ["Claire's secret"], actor=found.claire)
    return found


def test_the_emails_list_keeps_the_tagged_messages_the_viewer_may_see(s):
    def tagged(viewer, tag, view="all"):  # type: ignore[no-untyped-def]
        qs = emails.record_emails(viewer, "contacts", s.jane.pk, view, None, tag=tag)
        return set(qs.values_list("pk", flat=True))

    assert tagged(s.mark, "quote") == s.ids("first", "popped")
    assert tagged(s.mark, "Quote", "pop") == s.ids("popped")
    assert tagged(s.olga, "Quote") == s.ids("popped")  # Mark's mail is not Olga's to see
    assert tagged(s.mark, "claire's secret") == set()
    assert tagged(s.claire, "Claire's secret") == s.ids("claires")
    assert tagged(s.mark, "no such tag") == set()
    heads = emails.thread_heads(emails.record_emails(s.claire, "contacts", s.jane.pk, tag="Quote"))
    assert [(m.pk, m.thread_count) for m in heads] == [(s.popped.pk, 1), (s.first.pk, 1)]


def test_a_row_carries_its_tags(s):
    found = emails.extras("contacts", s.jane.pk, [s.first.pk, s.reply.pk])
    assert found.tags == {s.first.pk: ["Quote"]}


def test_a_list_of_tags_names_only_those_on_mail_the_viewer_may_see(s):
    def names(viewer, *on):  # type: ignore[no-untyped-def]
        return [t.name for t in visible_tags(viewer, *on)]

    assert names(s.claire) == ["Claire's secret", "Quote"]
    assert names(s.mark) == ["Quote"]
    assert names(s.olga) == ["Quote"]
    assert names(s.claire, "contacts", s.jane.pk) == ["Claire's secret", "Quote"]
    tags.untag_messages([s.popped.pk], ["quote"], actor=None)
    assert names(s.olga) == []  # only Mark's message holds it now
    assert names(s.mark) == ["Quote"]
