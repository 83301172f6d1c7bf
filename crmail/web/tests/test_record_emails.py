"""A record's Emails list on its page: viewpoints, views, threads, pages, queries."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crmail.linking.tests.record_mail import Scene, scene
from crmail.mail.models import Message, Thread
from crmail.people.models import User
from crmail.sharing.models import MessageOpen
from crmail.sharing.tests.build import link, message
from crmail.web.tests.mail_samples import deliver, text_message
from tests import factories as f

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "emails"}


@pytest.fixture
def s(org) -> Scene:  # type: ignore[no-untyped-def]
    return scene(org)


def page_of(client: Client, s: Scene, query: str = "", partial: bool = False) -> str:
    url = reverse("web:record_detail", args=["contacts", s.jane.pk]) + query
    response = client.get(url, **(HTMX if partial else {}))
    assert response.status_code == 200
    return response.content.decode()


def rows(html: str) -> list[int]:
    """The messages the list links to, in order (thread heads, or a thread's messages)."""
    return [int(pk) for pk in re.findall(r'class="email-subject" href="/messages/(\d+)/', html)]


def test_each_viewpoint_sees_its_threads_on_the_contact_page(s, client_for):
    assert rows(page_of(client_for(s.claire), s)) == [s.popped.pk, s.sent.pk, s.claires.pk]
    assert rows(page_of(client_for(s.mark), s)) == [s.popped.pk, s.sent.pk, s.reply.pk]
    assert rows(page_of(client_for(s.karl), s)) == [s.popped.pk, s.sent.pk, s.reply.pk]
    assert rows(page_of(client_for(s.olga), s)) == [s.popped.pk, s.sent.pk]


def test_a_row_shows_sender_date_snippet_markers_and_why(s, client_for):
    Message.objects.filter(pk=s.sent.pk).update(automated=True, list_id="offers.vendor.test")
    html = page_of(client_for(s.olga), s)
    assert "3 conversations" not in html and "2 conversations" in html
    assert "Jane Doe" in html and "rep@crmail.test" in html
    assert "See attached" in html and "Our offer, as promised" in html
    assert html.count('class="marker attachment"') == 1
    assert ">List</span>" in html
    assert "<summary>Why is it here?</summary><ul><li>Linked by" in html
    assert f'href="/messages/{s.sent.pk}/?on=contacts/{s.jane.pk}"' in html


def test_threads_show_their_count_and_expand_to_the_visible_messages(s, client_for):
    html = page_of(client_for(s.claire), s)
    assert "3 messages in this conversation" in html
    thread = reverse("web:record_email_thread", args=["contacts", s.jane.pk, s.claires.pk])
    assert f'hx-get="{thread}?view=all"' in html
    expanded = client_for(s.claire).get(thread + "?view=all").content.decode()
    assert rows(expanded) == [s.claires.pk, s.reply.pk, s.first.pk]
    karls = reverse("web:record_email_thread", args=["contacts", s.jane.pk, s.reply.pk])
    assert rows(client_for(s.karl).get(karls).content.decode()) == [s.reply.pk, s.first.pk]
    assert client_for(s.karl).get(thread).status_code == 404  # Claire's private message
    assert client_for(s.olga).get(karls).status_code == 404


def test_views_switch_in_place(s, client_for):
    client = client_for(s.claire)
    sent = page_of(client, s, "?view=sent", partial=True)
    assert sent.startswith('<section id="emails"') and "Details" not in sent
    assert rows(sent) == [s.sent.pk]
    assert 'class="active" aria-current="page">Sent from crmail' in sent
    assert rows(page_of(client, s, "?view=imap", partial=True)) == [s.claires.pk]
    assert rows(page_of(client, s, "?view=pop", partial=True)) == [s.popped.pk]
    by_mark = page_of(client, s, f"?view=user&user={s.mark.pk}", partial=True)
    assert rows(by_mark) == [s.sent.pk, s.reply.pk]
    assert f'<option value="{s.mark.pk}" selected>' in by_mark
    choosing = page_of(client, s, "?view=user", partial=True)
    assert rows(choosing) == [] and "Choose a user" in choosing
    assert rows(page_of(client, s, "?view=bogus")) == rows(page_of(client, s))  # all


def test_only_users_whose_mail_the_viewer_sees_are_offered(s, client_for):
    html = page_of(client_for(s.olga), s)
    options = re.findall(r'<option value="(\d+)"', html)
    assert {int(pk) for pk in options} == {s.mark.pk, s.pat.pk}


def test_pages_of_twenty_threads(s, client_for):
    for _ in range(21):
        message("jane@customer.test", [s.mark.email], on=[s.jane], sent_by=s.mark)
    client = client_for(s.olga)
    first = page_of(client, s)
    assert len(rows(first)) == 20 and "23 conversations" in first and "Page 1 of 2" in first
    second = page_of(client, s, "?view=all&page=2", partial=True)
    assert len(rows(second)) == 3 and set(rows(first)).isdisjoint(rows(second))


def test_a_page_takes_a_bounded_number_of_queries(s, client_for, django_assert_max_num_queries):
    client = client_for(s.claire)
    by_mark = f"?view=user&user={s.mark.pk}"
    with CaptureQueriesContext(connection) as few:
        page_of(client, s, by_mark, partial=True)
    for n in range(25):
        thread = Thread.objects.create(subject=f"t{n}")
        for _ in range(2):
            m = message("jane@customer.test", [s.mark.email], on=[s.jane], in_mailboxes=[s.mark])
            Message.objects.filter(pk=m.pk).update(thread=thread, has_attachments=True)
    # 31: with email intelligence's switch and the rows' badges (two queries a page).
    with django_assert_max_num_queries(31):
        page_of(client, s)
    with django_assert_max_num_queries(18), CaptureQueriesContext(connection) as many:
        assert len(rows(page_of(client, s, by_mark, partial=True))) == 20
    assert len(many) == len(few)  # the same statements for 1 row or 20


def test_a_record_one_may_not_see_shows_no_mail(s, client_for):
    lead = f.lead(s.olga, "hidden@customer.test")
    link(s.sent, lead)
    url = reverse("web:record_detail", args=["leads", lead.pk])
    assert client_for(s.mark).get(url).status_code == 404
    thread = reverse("web:record_email_thread", args=["leads", lead.pk, s.sent.pk])
    assert client_for(s.mark).get(thread).status_code == 404


# -- opening a message from the list ------------------------------------------------------


def opened(viewer: User) -> list[tuple[str, int | None]]:
    return list(MessageOpen.objects.filter(viewer=viewer).values_list("module", "record_id"))


def test_opening_a_message_from_a_record_is_audited_with_the_record(s, client_for):
    note = deliver(s.mark, text_message("See you Monday", subject="Monday"))
    link(note, s.jane)
    client = client_for(s.karl)  # the manager sees what Mark shares
    url = reverse("web:message", args=[note.pk])
    assert client.get(f"{url}?on=contacts/{s.jane.pk}").status_code == 200
    assert client.get(url).status_code == 200
    assert client.get(f"{url}?on=leads/{s.jane.pk}").status_code == 200  # not on it: no record
    assert client.get(f"{url}?images=1").status_code == 200  # the same opening, not again
    assert opened(s.karl) == [("", None), ("", None), ("contacts", s.jane.pk)]
    assert client_for(s.olga).get(url).status_code == 404
    assert opened(s.olga) == []
