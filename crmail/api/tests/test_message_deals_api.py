"""``/messages/{id}/deals``: linking mail to deals by hand, unlinking, moving (SPEC F4)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.crm.models import Deal
from crmail.linking import links
from crmail.linking.models import Link, Reason
from crmail.mail.models import Message
from crmail.people.models import ModuleDefault, User
from crmail.sharing.emails import record_emails
from crmail.web.tests.mail_samples import deliver, text_message
from tests import factories as f

pytestmark = pytest.mark.django_db


@dataclass
class Scene:
    rep: User
    note: Message  # in the rep's own mailbox
    alpha: Deal  # the rep's
    beta: Deal  # the rep's
    peers: Deal  # the peer's: the rep may view it only when deals are public read
    hidden: Deal  # another branch's: the rep may not view it (deals are private)
    others: Message  # in another branch's mailbox, on no record: the rep may not see it


@pytest.fixture
def s(org) -> Scene:  # type: ignore[no-untyped-def]
    east_rep = f.user("east-rep@crmail.test", role_name="Rep East")
    return Scene(
        rep=org.rep,
        note=deliver(org.rep, text_message("About the order", subject="Order")),
        alpha=f.deal(org.rep, "Alpha order"),
        beta=f.deal(org.rep, "Beta order"),
        peers=f.deal(org.peer, "Peer's deal"),
        hidden=f.deal(org.outsider_manager, "Hidden deal"),
        others=deliver(east_rep, text_message("Private", subject="East")),
    )


def deals_open_to_view() -> None:
    """Deals public read-only: the rep may view the peer's deal but not edit it."""
    ModuleDefault.objects.update_or_create(module="deals", defaults={"level": "public_read"})


def deal_ids(message: Message) -> set[int]:
    return set(
        Link.objects.filter(message=message, module="deals").values_list("record_id", flat=True)
    )


def on_deal(viewer: User, deal: Deal) -> set[int]:
    return set(record_emails(viewer, "deals", deal.pk).values_list("pk", flat=True))


def test_link_shows_on_the_message_and_the_deal(s):
    api = ApiClient(s.rep)
    response = api.post(f"/messages/{s.note.pk}/deals", {"deal_id": s.alpha.pk})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["module"] == "deals" and body["record_id"] == s.alpha.pk
    assert body["reason"] == "manual" and body["deal_name"] == "Alpha order"
    assert body["explanation"].startswith(f"Linked by {s.rep.name} on ")
    read = api.get(f"/messages/{s.note.pk}").json()
    [on_alpha] = [link for link in read["links"] if link["module"] == "deals"]
    assert on_alpha["record_id"] == s.alpha.pk and on_alpha["reason"] == "manual"
    assert on_alpha["explanation"] == body["explanation"]
    emails = api.get(f"/deals/{s.alpha.pk}/emails").json()["items"]
    assert [item["id"] for item in emails] == [s.note.pk]
    assert on_deal(s.rep, s.alpha) == {s.note.pk}


def test_move_then_unlink(s):
    api = ApiClient(s.rep)
    api.post(f"/messages/{s.note.pk}/deals", {"deal_id": s.alpha.pk})
    moved = api.post(f"/messages/{s.note.pk}/deals/{s.alpha.pk}/move", {"to_deal_id": s.beta.pk})
    assert moved.status_code == 200, moved.content
    assert moved.json()["record_id"] == s.beta.pk and moved.json()["reason"] == "manual"
    assert deal_ids(s.note) == {s.beta.pk}
    assert on_deal(s.rep, s.alpha) == set() and on_deal(s.rep, s.beta) == {s.note.pk}
    links_now = api.get(f"/messages/{s.note.pk}").json()["links"]
    assert [(x["module"], x["record_id"]) for x in links_now] == [("deals", s.beta.pk)]

    gone = api.delete(f"/messages/{s.note.pk}/deals/{s.beta.pk}")
    assert gone.status_code == 204, gone.content
    assert deal_ids(s.note) == set() and on_deal(s.rep, s.beta) == set()
    assert api.delete(f"/messages/{s.note.pk}/deals/{s.beta.pk}").status_code == 404


def test_unknown_or_invisible_deals_in_the_body_are_invalid(s):
    api = ApiClient(s.rep)
    for deal_id in (10**9, s.hidden.pk):
        response = api.post(f"/messages/{s.note.pk}/deals", {"deal_id": deal_id})
        assert response.status_code == 422 and fields(response) == {"deal_id"}
    assert "no deal" in response.json()["detail"][0]["message"]
    api.post(f"/messages/{s.note.pk}/deals", {"deal_id": s.alpha.pk})
    response = api.post(f"/messages/{s.note.pk}/deals/{s.alpha.pk}/move", {"to_deal_id": 10**9})
    assert response.status_code == 422 and fields(response) == {"to_deal_id"}
    assert deal_ids(s.note) == {s.alpha.pk}


def test_a_deal_one_sees_but_may_not_edit_is_forbidden(s):
    deals_open_to_view()
    api = ApiClient(s.rep)
    response = api.post(f"/messages/{s.note.pk}/deals", {"deal_id": s.peers.pk})
    assert response.status_code == 403
    assert "not change" in response.json()["detail"]
    api.post(f"/messages/{s.note.pk}/deals", {"deal_id": s.alpha.pk})
    move = api.post(f"/messages/{s.note.pk}/deals/{s.alpha.pk}/move", {"to_deal_id": s.peers.pk})
    assert move.status_code == 403
    # The peer linked it to their deal; the rep may see the link but not take it back.
    links.link_to_deal(User.objects.get(email="peer@crmail.test"), s.note, s.peers)
    assert api.delete(f"/messages/{s.note.pk}/deals/{s.peers.pk}").status_code == 403
    away = api.post(f"/messages/{s.note.pk}/deals/{s.peers.pk}/move", {"to_deal_id": s.beta.pk})
    assert away.status_code == 403
    assert deal_ids(s.note) == {s.alpha.pk, s.peers.pk}


def test_a_message_one_may_not_see_is_not_found(s):
    api = ApiClient(s.rep)
    for path, body in (
        (f"/messages/{s.others.pk}/deals", {"deal_id": s.alpha.pk}),
        (f"/messages/{s.others.pk}/deals/{s.alpha.pk}/move", {"to_deal_id": s.beta.pk}),
        ("/messages/999999999/deals", {"deal_id": s.alpha.pk}),
    ):
        assert api.post(path, body).status_code == 404
    assert api.delete(f"/messages/{s.others.pk}/deals/{s.alpha.pk}").status_code == 404
    assert not Link.objects.filter(message=s.others).exists()


def test_deals_in_the_path_one_may_not_see_or_without_the_message_are_not_found(s):
    api = ApiClient(s.rep)
    assert api.delete(f"/messages/{s.note.pk}/deals/{s.hidden.pk}").status_code == 404
    assert api.delete(f"/messages/{s.note.pk}/deals/{s.alpha.pk}").status_code == 404
    move = api.post(f"/messages/{s.note.pk}/deals/{s.alpha.pk}/move", {"to_deal_id": s.beta.pk})
    assert move.status_code == 404
    hidden = f"/messages/{s.note.pk}/deals/{s.hidden.pk}/move"
    assert api.post(hidden, {"to_deal_id": s.beta.pk}).status_code == 404


def test_same_deal_and_already_linked_are_invalid(s):
    api = ApiClient(s.rep)
    api.post(f"/messages/{s.note.pk}/deals", {"deal_id": s.alpha.pk})
    again = api.post(f"/messages/{s.note.pk}/deals", {"deal_id": s.alpha.pk})
    assert again.status_code == 422 and fields(again) == {"deal_id"}
    assert "already linked" in again.json()["detail"][0]["message"]
    same = api.post(f"/messages/{s.note.pk}/deals/{s.alpha.pk}/move", {"to_deal_id": s.alpha.pk})
    assert same.status_code == 422 and fields(same) == {"to_deal_id"}
    api.post(f"/messages/{s.note.pk}/deals", {"deal_id": s.beta.pk})
    onto = api.post(f"/messages/{s.note.pk}/deals/{s.alpha.pk}/move", {"to_deal_id": s.beta.pk})
    assert onto.status_code == 422 and fields(onto) == {"to_deal_id"}
    assert deal_ids(s.note) == {s.alpha.pk, s.beta.pk}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"deal_id": "abc"}, "deal_id"),
        ({"deal_id": 1.5}, "deal_id"),
        ({"deal_id": None}, "deal_id"),
        ({"deal_id": 0}, "deal_id"),
        ({"deal_id": 2**70}, "deal_id"),
        ({"deal_id": [1]}, "deal_id"),
        ({}, "deal_id"),
        ({"deal_id": 1, "extra": 1}, "extra"),
        ([], None),
        ("7", None),
    ],
)
def test_bad_bodies_answer_422_not_500(s, body, field):
    response = ApiClient(s.rep).post(f"/messages/{s.note.pk}/deals", body)
    assert response.status_code == 422, response.content
    assert field in fields(response)


def test_bad_move_bodies_answer_422(s):
    api = ApiClient(s.rep)
    api.post(f"/messages/{s.note.pk}/deals", {"deal_id": s.alpha.pk})
    path = f"/messages/{s.note.pk}/deals/{s.alpha.pk}/move"
    for body in ({"to_deal_id": "x"}, {"deal_id": s.beta.pk}, {}):
        response = api.post(path, body)
        assert response.status_code == 422 and "to_deal_id" in fields(response)
    assert api.post(path, raw=b"{not json").status_code == 400


def test_mail_sent_from_a_deal_stays_on_it(s):
    api = ApiClient(s.rep)
    links.link_sent(s.note, "deals", s.alpha.pk, s.rep)
    unlink = api.delete(f"/messages/{s.note.pk}/deals/{s.alpha.pk}")
    assert unlink.status_code == 409 and "sent from the deal" in unlink.json()["detail"]
    move = api.post(f"/messages/{s.note.pk}/deals/{s.alpha.pk}/move", {"to_deal_id": s.beta.pk})
    assert move.status_code == 409
    # Linked by hand as well: unlinking takes the manual link, the sent one stays.
    Link.objects.create(
        message=s.note,
        module="deals",
        record_id=s.alpha.pk,
        reason=Reason.MANUAL,
        created_at=s.note.date,
    )
    assert api.delete(f"/messages/{s.note.pk}/deals/{s.alpha.pk}").status_code == 204
    assert list(Link.objects.filter(message=s.note).values_list("reason", flat=True)) == [
        "sent_from_record"
    ]
    assert on_deal(s.rep, s.alpha) == {s.note.pk}


def test_the_endpoints_are_described_in_openapi(s):
    schema = ApiClient(s.rep).get("/openapi.json").json()
    paths = schema["paths"]
    link = paths["/api/v1/messages/{id}/deals"]["post"]
    assert "manual" in link["description"] and "422" in link["responses"]
    unlink = paths["/api/v1/messages/{id}/deals/{deal_id}"]["delete"]
    assert "sent_from_record" in unlink["description"] and "409" in unlink["responses"]
    move = paths["/api/v1/messages/{id}/deals/{deal_id}/move"]["post"]
    assert "to_deal_id" in move["description"]
