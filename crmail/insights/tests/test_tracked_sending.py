"""Mail sent from crmail with tracking on: the recipients' copy carries the pixel and
tracked links, the stored copy (what colleagues read in crmail) carries neither."""

from __future__ import annotations

import re

import pytest

from crmail.insights import switch
from crmail.insights.models import MessageInsight
from crmail.insights.tracking import Tracker
from crmail.mail.models import Message
from crmail.mail.store import raw_bytes
from crmail.mailboxes.sending import send_message

from .world import PUBLIC, draft, html_of, parsed

pytestmark = pytest.mark.django_db


def send(rep, track=True, **kw):
    return send_message(rep.user, draft(**kw), mailbox=rep.mailbox, tracking=Tracker(track=track))


def test_a_rich_message_goes_out_tracked_and_is_stored_as_written(on):
    html = (
        '<p>Hello <a href="https://acme.example/a?x=1&amp;y=2">the offer</a> and '
        '<a href="mailto:ann@acme.example">me</a></p>'
    )
    sent = send(on, html=html)
    [got] = on.sink.wait_for(1, 5)
    theirs = html_of(got.data)
    insight = MessageInsight.objects.get(sent=sent)
    assert insight.tracked and insight.links == ["https://acme.example/a?x=1&y=2"]
    assert f'src="{PUBLIC}/t/o/' in theirs
    assert re.search(rf'href="{re.escape(PUBLIC)}/t/c/[A-Za-z0-9_-]+"', theirs)
    assert 'href="mailto:ann@acme.example"' in theirs  # only http(s) links go through crmail
    assert "acme.example/a?x=1" not in re.sub(r">[^<]*<", "><", theirs)  # not in any href
    stored = raw_bytes(Message.objects.get(pk=sent.message_id))
    mine = html_of(stored)
    assert "/t/o/" not in mine and "/t/c/" not in mine
    assert 'href="https://acme.example/a?x=1&amp;y=2"' in mine
    # One message: the same Message-ID and text part on both sides.
    assert parsed(got.data)["Message-ID"] == parsed(stored)["Message-ID"]
    assert (
        parsed(got.data).get_body(("plain",)).get_content()
        == parsed(stored).get_body(("plain",)).get_content()
    )


def test_a_plain_text_message_gets_an_html_part_to_carry_the_pixel(on):
    sent = send(on)
    [got] = on.sink.wait_for(1, 5)
    theirs = html_of(got.data)
    assert "/t/o/" in theirs and f"{PUBLIC}/t/c/" in theirs
    assert parsed(got.data).get_body(("plain",)).get_content().strip() == draft().text
    stored = parsed(raw_bytes(Message.objects.get(pk=sent.message_id)))
    assert stored.get_body(("html",)) is None  # stored as written: text only
    assert MessageInsight.objects.get(sent=sent).links == ["https://acme.example/offer?id=7&x=1"]


def test_dont_track_sends_the_stored_bytes_themselves(on):
    sent = send(on, track=False)
    [got] = on.sink.wait_for(1, 5)
    assert got.data.replace(b"\r\n", b"\n") == raw_bytes(
        Message.objects.get(pk=sent.message_id)
    ).replace(b"\r\n", b"\n")
    assert not MessageInsight.objects.filter(sent=sent).exists()


def test_without_a_public_address_mail_goes_out_untracked_and_says_so(on, settings):
    settings.CRMAIL_PUBLIC_URL = ""
    state = switch.state()
    assert state.switched_on and not state.tracking
    assert "CRMAIL_PUBLIC_URL" in state.words
    send(on, track=state.tracking)
    [got] = on.sink.wait_for(1, 5)
    assert b"/t/o/" not in got.data


def test_tracking_is_off_until_an_administrator_turns_it_on(db):
    from tests import factories as f

    assert not switch.state().switched_on
    with pytest.raises(switch.NotAllowed):
        switch.set_tracking(f.user("someone@crmail.test"), True)
    admin = f.user("boss@crmail.test", admin=True)
    assert switch.set_tracking(admin, True).switched_on
