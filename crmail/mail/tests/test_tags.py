"""Tags on messages: one tag per name whatever its case, idempotent tagging, events."""

from __future__ import annotations

import pytest

from crmail.events.models import Event
from crmail.mail import tags
from crmail.mail.models import MessageTag, Tag
from crmail.sharing.tests.build import message
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_tagging_twice_makes_one_row_and_one_event(org):
    m = message("ann@client.example", [org.rep.email])
    assert tags.tag_messages([m.pk], ["Quote"], actor=org.rep) == {m.pk: ["Quote"]}
    assert tags.tag_messages([m.pk], ["quote", " QUOTE "], actor=org.rep) == {}
    assert MessageTag.objects.count() == 1 and Tag.objects.count() == 1
    [event] = Event.objects.filter(kind="message.tagged")
    assert event.data == {"message_id": m.pk, "tags": ["Quote"], "actor_id": org.rep.pk}
    row = MessageTag.objects.get()
    assert row.added_by == org.rep and row.added_at is not None


def test_a_tag_keeps_its_first_spelling_and_names_are_trimmed(org):
    first, second = message("a@x.example"), message("b@x.example")
    tags.tag_messages([first.pk], ["  Follow up "], actor=org.rep)
    tags.tag_messages([second.pk], ["FOLLOW UP", "Urgent"], actor=None)
    assert tags.tags_of([first.pk, second.pk]) == {
        first.pk: ["Follow up"],
        second.pk: ["Follow up", "Urgent"],
    }
    assert tags.find("follow UP").name == "Follow up"
    assert set(
        MessageTag.objects.filter(tag__key="follow up").values_list("message_id", flat=True)
    ) == {
        first.pk,
        second.pk,
    }
    assert MessageTag.objects.get(message=second, tag__key="urgent").added_by is None


@pytest.mark.parametrize(
    ("names", "says"),
    [
        ([], "at least one"),
        (["  "], "needs a name"),
        (["x" * 101], "at most 100"),
        (["two\nlines"], "one line"),
        (["tab\there"], "one line"),
        (["nul\x00"], "NUL"),
        ([12], "text"),
        ([f"t{i}" for i in range(51)], "at most 50"),
    ],
)
def test_names_that_cannot_be_tags_are_refused(org, names, says):
    m = message("a@x.example")
    with pytest.raises(tags.TagInvalid) as err:
        tags.tag_messages([m.pk], names, actor=org.rep)
    assert says.lower() in str(err.value).lower()
    assert not Tag.objects.exists()


def test_a_hundred_characters_are_a_tag(org):
    m = message("a@x.example")
    name = "é" * 100
    assert tags.tag_messages([m.pk], [name], actor=org.rep) == {m.pk: [name]}


def test_untagging_takes_off_only_what_a_message_holds(org):
    first, second = message("a@x.example"), message("b@x.example")
    tags.tag_messages([first.pk, second.pk], ["Quote"], actor=org.rep)
    tags.tag_messages([first.pk], ["Urgent"], actor=org.rep)
    removed = tags.untag_messages([first.pk, second.pk], ["urgent"], actor=org.rep)
    assert removed == {first.pk: ["Urgent"]}
    assert tags.untag_messages([second.pk], ["urgent"], actor=org.rep) == {}
    assert tags.tags_of([first.pk, second.pk]) == {first.pk: ["Quote"], second.pk: ["Quote"]}
    [event] = Event.objects.filter(kind="message.untagged")
    assert event.data == {"message_id": first.pk, "tags": ["Urgent"], "actor_id": org.rep.pk}


def test_tagging_a_message_that_is_gone_does_nothing(org):
    assert tags.tag_messages([10**9], ["Quote"], actor=org.rep) == {}
    assert not MessageTag.objects.exists()


def test_the_tagged_lookup_is_the_tags_messages(org):
    rep = f.user()
    tagged, other = message("a@x.example"), message("b@x.example")
    tags.tag_messages([tagged.pk], ["Quote"], actor=rep)
    ids = {row["message_id"] for row in tags.tagged("QUOTE")}
    assert ids == {tagged.pk} and other.pk not in ids
    assert list(tags.tagged("nothing such")) == []
