"""Tags through the API: put on and taken off a message one may see, carried on every
message item, filtering the inbox, search and a record's Emails list, listed by name."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.mail import tags
from crmail.mailboxes.tests.test_inbox import connect, put
from crmail.search.tests.mail import deliver, raw
from crmail.sharing import actions
from crmail.sharing.tests.build import link, message
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_tagging_a_message_twice_keeps_one_tag_and_untagging_takes_it_off(org):
    contact = f.contact(org.rep, "ann@client.example")
    mail = deliver(None, raw("ann@client.example", org.rep.email, "Hi", "Hello"), to=[org.rep])
    link(mail, contact)
    client = ApiClient(org.rep)
    first = client.post(f"/messages/{mail.pk}/tags", {"tags": ["Quote", " follow up "]})
    assert first.status_code == 200, first.content
    assert first.json() == {"id": mail.pk, "tags": ["follow up", "Quote"]}
    again = client.post(f"/messages/{mail.pk}/tags", {"tags": ["QUOTE"]})
    assert again.json()["tags"] == ["follow up", "Quote"]
    assert client.get(f"/messages/{mail.pk}").json()["tags"] == ["follow up", "Quote"]
    emails = client.get(f"/contacts/{contact.pk}/emails").json()["items"]
    assert emails[0]["tags"] == ["follow up", "Quote"]
    gone = client.delete(f"/messages/{mail.pk}/tags/{quote('Follow Up')}")
    assert gone.status_code == 204
    assert client.delete(f"/messages/{mail.pk}/tags/{quote('follow up')}").status_code == 404
    assert tags.tags_of([mail.pk]) == {mail.pk: ["Quote"]}
    client.post(f"/messages/{mail.pk}/tags", {"tags": ["Q1/Q2 deals"]})
    assert client.delete(f"/messages/{mail.pk}/tags/{quote('q1/q2 deals')}").status_code == 204
    assert client.delete(f"/messages/{mail.pk}/tags/{quote(chr(0))}").status_code == 404


def test_only_who_may_see_a_message_tags_it(org):
    actions.set_sharing(None, org.rep, mode="private")
    mail = message("ann@client.example", [org.rep.email], in_mailboxes=[org.rep])
    tags.tag_messages([mail.pk], ["Secret deal"], actor=org.rep)
    peer = ApiClient(org.peer)
    assert peer.post(f"/messages/{mail.pk}/tags", {"tags": ["Mine"]}).status_code == 404
    assert peer.delete(f"/messages/{mail.pk}/tags/{quote('Secret deal')}").status_code == 404
    assert peer.get("/tags").json() == {"items": [], "count": 0, "limit": 50, "offset": 0}
    assert ApiClient(org.rep).get("/tags").json()["items"] == [{"name": "Secret deal"}]
    assert tags.tags_of([mail.pk]) == {mail.pk: ["Secret deal"]}


def test_names_that_cannot_be_tags_answer_422_naming_tags(org):
    mail = message("ann@client.example", [org.rep.email], in_mailboxes=[org.rep])
    client = ApiClient(org.rep)
    for body in ({"tags": []}, {"tags": ["  "]}, {"tags": ["a\nb"]}, {"tags": ["x" * 101]}):
        answer = client.post(f"/messages/{mail.pk}/tags", body)
        assert answer.status_code == 422, body
        assert fields(answer) == {"tags"}
    assert client.post(f"/messages/{mail.pk}/tags", {"tags": "Quote"}).status_code == 422


def test_the_tag_list_filters_by_the_start_of_a_name(org):
    mail = message("ann@client.example", [org.rep.email], in_mailboxes=[org.rep])
    tags.tag_messages([mail.pk], ["Quote", "Question", "Urgent"], actor=None)
    client = ApiClient(org.rep)
    assert [t["name"] for t in client.get("/tags").json()["items"]] == [
        "Question",
        "Quote",
        "Urgent",
    ]
    assert [t["name"] for t in client.get("/tags", {"q": "QU"}).json()["items"]] == [
        "Question",
        "Quote",
    ]


def test_the_inbox_filters_by_tag_and_carries_the_tags(org):
    box = connect(org.rep)
    tagged, other = put(box), put(box)
    tags.tag_messages([tagged.pk], ["Quote"], actor=None)
    client = ApiClient(org.rep)
    body = client.get("/inbox", {"tag": "quote"}).json()
    assert body["count"] == 1
    assert [(i["message_id"], i["tags"]) for i in body["items"]] == [(tagged.pk, ["Quote"])]
    everything = {i["message_id"]: i["tags"] for i in client.get("/inbox").json()["items"]}
    assert everything == {tagged.pk: ["Quote"], other.pk: []}
    assert client.get("/inbox", {"tag": ""}).status_code == 422


def test_search_and_a_records_emails_filter_by_tag(org, django_capture_on_commit_callbacks):
    rep = org.rep
    contact = f.contact(rep, "ann@client.example")
    c = django_capture_on_commit_callbacks
    quote_mail = deliver(
        c, raw("ann@client.example", rep.email, "Quote", "the price"), to=[rep], on=[contact]
    )
    deliver(c, raw("ann@client.example", rep.email, "Hello", "the price"), to=[rep], on=[contact])
    tags.tag_messages([quote_mail.pk], ["Quote"], actor=None)
    client = ApiClient(rep)
    hits = client.get("/search", {"q": "price", "tag": "QUOTE"}).json()
    assert [(h["id"], h["tags"]) for h in hits["items"]] == [(quote_mail.pk, ["Quote"])]
    assert client.get("/search", {"q": "tag:quote"}).json()["count"] == 1
    assert client.get("/search", {"q": "price"}).json()["count"] == 2
    emails = client.get(f"/contacts/{contact.pk}/emails", {"tag": "Quote"}).json()
    assert [e["id"] for e in emails["items"]] == [quote_mail.pk]


def test_a_mailboxs_message_list_carries_the_tags(org):
    box = connect(org.rep)
    mail = put(box)
    tags.tag_messages([mail.pk], ["Quote"], actor=None)
    items = ApiClient(org.rep).get(f"/mailboxes/{box.pk}/messages").json()["items"]
    assert [(i["id"], i["tags"]) for i in items] == [(mail.pk, ["Quote"])]
