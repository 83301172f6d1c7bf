"""``GET /api/v1/search``: the query and its filters as parameters, the usual envelope,
422 naming the parameter, and nothing the caller may not open."""

from __future__ import annotations

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.search.tests.mail import deliver, raw
from crmail.sharing import actions
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(org, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    c = django_capture_on_commit_callbacks
    jane = f.contact(org.rep, "jane@customer.test")
    offer = deliver(
        c,
        raw(
            "Jane <jane@customer.test>",
            org.rep.email,
            "Offer <v2>",
            "the renewal offer",
            day=3,
            attachment="terms.pdf",
        ),
        to=[org.rep],
        on=[jane],
    )
    other = deliver(
        c, raw("bob@other.test", org.rep.email, "Renewal reminder", "renewal", day=8), to=[org.rep]
    )
    return org, jane, offer, other


def search(user, **params):  # type: ignore[no-untyped-def]
    return ApiClient(user).get("/search", params)


def test_finds_with_highlights_in_the_usual_envelope(world):
    org, _, offer, _ = world
    body = search(org.rep, q="offer").json()
    assert (body["count"], body["limit"], body["offset"]) == (1, 50, 0)
    [item] = body["items"]
    assert item["id"] == offer.pk and item["thread_matches"] == 1
    assert item["subject_html"] == "<mark>Offer</mark> &lt;v2&gt;"
    assert "the renewal <mark>offer</mark>" in item["snippet_html"]
    assert item["url"].endswith(f"/messages/{offer.pk}/")


def test_filters_as_parameters(world):
    org, jane, offer, other = world

    def ids(**params):  # type: ignore[no-untyped-def]
        return {i["id"] for i in search(org.rep, q="renewal", **params).json()["items"]}

    assert ids() == {offer.pk, other.pk}
    assert ids(**{"from": "jane"}) == {offer.pk}
    assert ids(to="rep") == {offer.pk, other.pk}
    assert ids(has_attachment="true") == {offer.pk}
    assert ids(after="2026-06-05") == {other.pk}
    assert ids(before="2026-06-05") == {offer.pk}
    assert ids(record=f"contacts:{jane.pk}") == {offer.pk}
    assert ids(unread="true") == {offer.pk, other.pk}
    assert ids(mailbox=org.rep.mailboxes.get().pk) == {offer.pk, other.pk}
    assert ids(folder=org.rep.mailboxes.get().folders.get().pk) == {offer.pk, other.pk}


def test_bad_input_answers_422_naming_the_parameter(world):
    org = world[0]
    for params, field in (
        ({"q": "before:soon"}, "q"),
        ({"record": "people:1"}, "record"),
        ({"record": "contacts:x"}, "record"),
        ({"after": "yesterday"}, "after"),
        ({"unread": "maybe"}, "unread"),
        ({"folder": "0"}, "folder"),
        ({"q": "x" * 201}, "q"),
        ({"q": "from:@@"}, "q"),
        ({"from": "@@"}, "from"),
        ({"to": " "}, "to"),
    ):
        response = search(org.rep, **params)
        assert response.status_code == 422, params
        assert fields(response) == {field}, params


def test_others_find_nothing_of_private_mail_nor_count_it(world):
    org = world[0]
    actions.set_sharing(None, org.rep, mode="private")
    for user in (org.admin, org.manager, org.peer):
        body = search(user, q="renewal").json()
        assert (body["items"], body["count"]) == ([], 0)


def test_needs_a_token():
    assert ApiClient().get("/search", {"q": "x"}).status_code == 401
