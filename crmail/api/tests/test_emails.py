"""``GET /{module}/{id}/emails`` and ``GET /messages/{id}``: what each viewer may read."""

from __future__ import annotations

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.linking.tests.record_mail import Scene, scene
from crmail.people.models import User
from crmail.sharing.models import MessageOpen
from crmail.sharing.tests.build import link
from crmail.web.tests.mail_samples import PDF, deliver, html_message
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def s(org) -> Scene:  # type: ignore[no-untyped-def]
    return scene(org)


def emails(viewer: User, path: str, **params) -> dict:  # type: ignore[no-untyped-def]
    response = ApiClient(viewer).get(path, params)
    assert response.status_code == 200, response.content
    return response.json()


def ids(viewer: User, s: Scene, **params) -> set[int]:  # type: ignore[no-untyped-def]
    return {
        item["id"] for item in emails(viewer, f"/contacts/{s.jane.pk}/emails", **params)["items"]
    }


def test_manager_subordinate_peer_and_outsider_each_see_what_f5_says(s):
    everything = s.ids("first", "reply", "claires", "sent", "popped")
    assert ids(s.claire, s) == everything
    assert ids(s.mark, s) == everything - s.ids("claires")
    assert ids(s.karl, s) == everything - s.ids("claires")
    assert ids(s.olga, s) == s.ids("sent", "popped")


def test_views_filter(s):
    assert ids(s.claire, s, view="sent") == s.ids("sent")
    assert ids(s.claire, s, view="imap") == s.ids("first", "reply", "claires")
    assert ids(s.claire, s, view="pop") == s.ids("popped")
    assert ids(s.claire, s, view="user", user=s.mark.pk) == s.ids("first", "reply", "sent")
    assert ids(s.karl, s, view="user", user=s.claire.pk) == set()


def test_items_carry_what_a_client_needs(s):
    page = emails(s.olga, f"/contacts/{s.jane.pk}/emails")
    assert page["count"] == 2 and page["offset"] == 0
    popped, sent = page["items"]
    assert popped["id"] == s.popped.pk and popped["has_attachments"] is True
    assert popped["snippet"] == "See attached" and popped["to"] == ["pat@crmail.test"]
    assert sent["from"] == {"name": "", "address": "rep@crmail.test"}
    assert sent["subject"] == s.sent.subject and sent["automated"] is False
    assert sent["thread_id"] is None and sent["date"].startswith("2026-06-01")
    assert sent["url"] == f"http://testserver/messages/{s.sent.pk}/"
    [why] = sent["links"]
    assert why["module"] == "contacts" and why["record_id"] == s.jane.pk
    assert why["reason"] == "manual" and why["explanation"].startswith("Linked by")
    thread = emails(s.karl, f"/contacts/{s.jane.pk}/emails", view="imap")["items"]
    assert {item["thread_id"] for item in thread} == {s.first.thread_id}


def test_pages_newest_first(s):
    seen = []
    for offset in (0, 2, 4):
        page = emails(s.claire, f"/contacts/{s.jane.pk}/emails", limit=2, offset=offset)
        assert page["count"] == 5 and page["limit"] == 2
        seen += [item["id"] for item in page["items"]]
    assert seen == [s.popped.pk, s.sent.pk, s.claires.pk, s.reply.pk, s.first.pk]
    # Past the end, the count is still the whole list's; an empty list counts 0.
    past = emails(s.claire, f"/contacts/{s.jane.pk}/emails", limit=2, offset=9)
    assert (past["count"], past["items"]) == (5, [])
    assert emails(s.olga, f"/contacts/{s.jane.pk}/emails", view="imap")["count"] == 0


def test_every_record_module_answers(s, org):
    account = f.account(s.mark, "Customer Inc")
    s.jane.account = account
    s.jane.save(update_fields=["account"])
    assert emails_of(s.mark, f"/accounts/{account.pk}/emails") == ids(s.mark, s)
    lead = f.lead(s.mark, "lead@customer.test")
    deal = f.deal(s.mark, "Big deal")
    link(s.sent, lead)
    link(s.sent, deal)
    assert emails_of(s.mark, f"/leads/{lead.pk}/emails") == s.ids("sent")
    assert emails_of(s.mark, f"/deals/{deal.pk}/emails") == s.ids("sent")


def emails_of(viewer: User, path: str) -> set[int]:
    return {item["id"] for item in emails(viewer, path)["items"]}


def test_a_record_one_may_not_see_answers_404(s):
    lead = f.lead(s.olga, "hidden@customer.test")  # leads are private: owner and superiors
    link(s.sent, lead)
    assert ApiClient(s.mark).get(f"/leads/{lead.pk}/emails").status_code == 404
    assert ApiClient(s.mark).get(f"/contacts/{s.jane.pk + 1000}/emails").status_code == 404
    assert ApiClient(s.olga).get(f"/leads/{lead.pk}/emails").status_code == 200


def test_bad_views_and_users_answer_422_naming_the_field(s):
    api = ApiClient(s.claire)
    path = f"/contacts/{s.jane.pk}/emails"
    for params, field in (
        ({"view": "everything"}, "view"),
        ({"view": "user"}, "user"),
        ({"view": "user", "user": 10**9}, "user"),
        ({"view": "sent", "user": s.mark.pk}, "user"),
        ({"view": "user", "user": "mark"}, "user"),
    ):
        response = api.get(path, params)
        assert response.status_code == 422, params
        assert fields(response) == {field}, params


# -- one message --------------------------------------------------------------------------


@pytest.fixture
def offer(s):  # type: ignore[no-untyped-def]
    raw = html_message(
        '<p onclick="alert(1)">Dear Mark</p><script>alert(2)</script>'
        '<img src="cid:logo@vendor.example"><img src="http://tracker.example/t.gif">',
        attachments=(("offer.pdf", "application/pdf", PDF), ("run.html", "text/html", b"<b>")),
    )
    message = deliver(s.mark, raw)
    link(message, s.jane)
    return message


def test_a_message_gives_headers_text_clean_html_attachments_links_and_url(s, offer):
    response = ApiClient(s.claire).get(f"/messages/{offer.pk}")
    assert response.status_code == 200, response.content
    body = response.json()
    headers = body["headers"]
    assert headers["subject"] == "Quarterly offer"
    assert headers["from"] == [{"name": "Ada Sender", "address": "ada@vendor.example"}]
    assert headers["to"] == [{"name": "Rex Rep", "address": "rep@crmail.test"}]
    assert headers["cc"] == [{"name": "Carl", "address": "carl@client.example"}]
    assert body["text"].strip() == "Plain version"
    html = body["html"]
    assert "Dear Mark" in html and "<script" not in html and "onclick" not in html
    assert "tracker.example" not in html
    assert f"/messages/{offer.pk}/inline/" in html  # the cid: logo, from crmail
    names = {a["name"]: a for a in body["attachments"]}
    assert {"offer.pdf", "run.html"} <= set(names)
    pdf = names["offer.pdf"]
    assert pdf["content_type"] == "application/pdf" and pdf["size"] == len(PDF)
    download = ApiClient(s.claire).get(pdf["download_url"].removeprefix("http://testserver/api/v1"))
    assert download.status_code == 200 and download.content == PDF
    assert download["Content-Disposition"].startswith("attachment;")
    page = ApiClient(s.claire).get(names["run.html"]["download_url"].split("/api/v1")[1])
    assert page["Content-Type"] == "application/octet-stream"
    [why] = body["links"]
    assert (why["module"], why["record_id"], why["reason"]) == ("contacts", s.jane.pk, "manual")
    assert body["url"] == f"http://testserver/messages/{offer.pk}/"
    assert body["readable"] is True


def test_a_message_is_404_unless_the_viewer_may_see_it(s, offer):
    for viewer in (s.olga,):
        assert ApiClient(viewer).get(f"/messages/{offer.pk}").status_code == 404
        assert ApiClient(viewer).get(f"/messages/{offer.pk}/attachments/1").status_code == 404
    assert ApiClient(s.karl).get(f"/messages/{s.claires.pk}").status_code == 404
    assert ApiClient(s.mark).get(f"/messages/{offer.pk + 1000}").status_code == 404
    assert ApiClient(s.karl).get(f"/messages/{offer.pk}").status_code == 200  # his report's


def test_links_to_records_the_viewer_may_not_see_are_left_out(s, offer):
    hidden = f.lead(s.olga, "ada@vendor.example")
    link(offer, hidden)
    body = ApiClient(s.mark).get(f"/messages/{offer.pk}").json()
    assert {(x["module"], x["record_id"]) for x in body["links"]} == {("contacts", s.jane.pk)}


def test_opening_a_message_is_audited(s, offer):
    assert not MessageOpen.objects.exists()
    ApiClient(s.claire).get(f"/messages/{offer.pk}")
    ApiClient(s.olga).get(f"/messages/{offer.pk}")  # refused: not recorded
    [opened] = MessageOpen.objects.all()
    assert (opened.viewer, opened.message, opened.viewer_email) == (
        s.claire,
        offer,
        s.claire.email,
    )
