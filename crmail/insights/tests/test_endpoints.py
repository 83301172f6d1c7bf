"""The pixel and tracked links as recipients' mail programs reach them: the same answer
for every token, in the same time, recorded after the answer and only when crmail signed
the token; scanners marked, never dropped."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from django.test import Client, RequestFactory
from django.utils import timezone

from crmail.insights import tokens
from crmail.insights.models import Click, MessageInsight, Open
from crmail.insights.tracking import Tracker
from crmail.mailboxes.sending import send_message
from crmail.web.views import tracking as views

from .world import CHROME, IPHONE, draft, html_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def tracked(on):
    """A tracked message sent a minute ago: (sent, the pixel's path, its links' paths)."""
    html = '<p><a href="https://acme.example/a">A</a> <a href="https://acme.example/b">B</a></p>'
    sent = send_message(on.user, draft(html=html), mailbox=on.mailbox, tracking=Tracker(track=True))
    type(sent).objects.filter(pk=sent.pk).update(sent_at=timezone.now() - timedelta(minutes=1))
    [got] = on.sink.wait_for(1, 5)
    theirs = html_of(got.data)
    pixel = re.search(r'src="https://crm\.example\.com(/t/o/[^"]+)"', theirs).group(1)
    links = re.findall(r'href="https://crm\.example\.com(/t/c/[^"]+)"', theirs)
    return sent, pixel, links


def forged_pixels(pixel: str) -> list[str]:
    token = pixel.rsplit("/", 1)[1]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return [
        f"/t/o/{flipped}",
        "/t/o/x",
        "/t/o/" + "A" * 40,
        f"/t/o/{tokens.make('o', tokens.new_key())}",
    ]


def test_the_pixel_answers_the_same_for_every_token_and_records_only_crmails(tracked):
    sent, pixel, _ = tracked
    client = Client()
    answers = [client.get(path, HTTP_USER_AGENT=CHROME) for path in [pixel, *forged_pixels(pixel)]]
    first = answers[0]
    assert first.status_code == 200 and first["Content-Type"] == "image/gif"
    assert first["Cache-Control"].startswith("no-store")
    for other in answers[1:]:
        assert (other.status_code, other.content) == (first.status_code, first.content)
        assert dict(other.headers) == dict(first.headers)
        assert not other.cookies
    [opened] = Open.objects.all()
    assert (opened.sent_id, opened.client, opened.scanner) == (sent.pk, "desktop", False)


def test_the_answer_is_given_before_anything_is_recorded(tracked, django_assert_num_queries):
    _, pixel, _ = tracked
    request = RequestFactory().get(pixel, HTTP_USER_AGENT=CHROME)
    with django_assert_num_queries(0):  # no database work decides or delays the answer
        response = views.tracking_pixel(request, pixel.rsplit("/", 1)[1])
    assert not Open.objects.exists()
    # The WSGI server calls close() once the answer is sent; as Django's test client does,
    # the test's database connection is kept open through it.
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)
    assert Open.objects.count() == 1


def test_valid_and_invalid_tokens_take_the_same_work(
    tracked, monkeypatch, django_assert_num_queries
):
    """crmail's token, forged ones and garbage go through the same steps: every signing
    key's MAC computed and compared once, in constant time, and no database work; the
    answers are the same bytes. (Work counted, not timed: a timing is not a test.)"""
    _, pixel, _ = tracked
    factory = RequestFactory()
    cases = {
        "valid": pixel.rsplit("/", 1)[1],
        "forged": forged_pixels(pixel)[0].rsplit("/", 1)[1],
        "other key": forged_pixels(pixel)[3].rsplit("/", 1)[1],
        "garbage": "not-a-token",
    }
    steps: list[str] = []
    mac, compare = tokens._mac, tokens.hmac.compare_digest
    monkeypatch.setattr(tokens, "_mac", lambda *a: steps.append("mac") or mac(*a))
    monkeypatch.setattr(
        tokens.hmac, "compare_digest", lambda *a: steps.append("compare") or compare(*a)
    )
    work, answers = {}, {}
    for name, token in cases.items():
        steps.clear()
        with django_assert_num_queries(0):
            answer = views.tracking_pixel(factory.get("/t/o/" + token), token)
        work[name], answers[name] = list(steps), answer.content
    assert work["valid"] and all(w == work["valid"] for w in work.values()), work
    assert len(set(answers.values())) == 1


def test_a_click_goes_to_the_signed_address_and_is_recorded(tracked):
    _, _, links = tracked
    answer = Client().get(links[1], HTTP_USER_AGENT=IPHONE)
    assert answer.status_code == 302 and answer["Location"] == "https://acme.example/b"
    assert answer["Referrer-Policy"] == "no-referrer"
    [click] = Click.objects.all()
    assert (click.link, click.url, click.client, click.scanner) == (
        1,
        "https://acme.example/b",
        "mobile",
        False,
    )


def test_an_altered_click_token_redirects_nowhere_and_records_nothing(tracked):
    _, _, links = tracked
    token = links[0].rsplit("/", 1)[1]
    for bad in (
        token[:-2],
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        "x",
        tokens.make("o", tokens.new_key()),
    ):
        answer = Client().get(f"/t/c/{bad}", HTTP_USER_AGENT=CHROME)
        assert answer.status_code == 404 and "Location" not in answer
        assert b"cannot be followed" in answer.content
    assert not Click.objects.exists()


def test_a_token_of_a_message_not_tracked_records_nothing(tracked):
    sent, pixel, _ = tracked
    MessageInsight.objects.filter(sent=sent).delete()
    assert Client().get(pixel, HTTP_USER_AGENT=CHROME).status_code == 200
    assert not Open.objects.exists()


def test_scanners_are_marked_and_kept(tracked):
    _, pixel, _ = tracked
    client = Client()
    client.get(pixel, HTTP_USER_AGENT="Barracuda Sentinel (EE)")
    client.get(pixel, HTTP_USER_AGENT="Mozilla/5.0")  # Apple Mail Privacy Protection
    client.get(pixel, HTTP_USER_AGENT=CHROME, REMOTE_ADDR="148.163.150.2")  # Proofpoint
    client.head(pixel, HTTP_USER_AGENT=CHROME)
    client.get(pixel, HTTP_USER_AGENT=CHROME)
    opens = list(Open.objects.order_by("pk"))
    assert [o.scanner for o in opens] == [True, True, True, True, False]
    assert opens[0].scanner_reason == "a mail-security scanner (Barracuda)"
    assert opens[1].client == "apple"


def test_an_open_within_seconds_of_sending_is_probably_a_scanner(tracked):
    sent, pixel, _ = tracked
    type(sent).objects.filter(pk=sent.pk).update(sent_at=timezone.now() - timedelta(seconds=3))
    Client().get(pixel, HTTP_USER_AGENT=CHROME)
    [opened] = Open.objects.all()
    assert opened.scanner and opened.scanner_reason == "within seconds of sending"


def test_every_link_followed_at_once_marks_the_whole_burst(tracked):
    _, _, links = tracked
    client = Client()
    client.get(links[0], HTTP_USER_AGENT=CHROME)
    client.get(links[1], HTTP_USER_AGENT=CHROME)
    clicks = list(Click.objects.order_by("pk"))
    assert [c.scanner for c in clicks] == [True, True]
    assert {c.scanner_reason for c in clicks} == {"several links followed within seconds"}
    # The same link again later, by a person, counts.
    later = timezone.now() + timedelta(minutes=5)
    from crmail.insights import recording

    recording.record(
        tokens.read(links[0].rsplit("/", 1)[1]), user_agent=CHROME, address="198.51.100.7", at=later
    )
    assert Click.objects.filter(scanner=False).count() == 1


def test_crmail_never_fetches_its_own_pixel_for_a_viewer(tracked, settings):
    from crmail.web import image_proxy

    with pytest.raises(image_proxy.Refused):
        image_proxy.fetch("https://crm.example.com" + tracked[1])
