"""The Deals section of a message page: link mail to a deal by hand, move it, unlink it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import reverse

from crmail.crm.models import Contact, Deal
from crmail.linking import links
from crmail.linking.models import Link
from crmail.mail.models import Message
from crmail.people.models import ModuleDefault, Profile, User, full_permissions
from crmail.sharing import actions
from crmail.sharing.emails import record_emails
from crmail.sharing.tests.build import link
from crmail.web.tests.mail_samples import deliver, text_message
from tests import factories as f

pytestmark = pytest.mark.django_db

SENDER = "ada@vendor.example"  # the From of text_message


@dataclass
class Scene:
    rep: User
    peer: User
    ada: Contact  # the sender, a contact of the rep's
    note: Message  # in the rep's mailbox, linked to Ada by her address
    alpha: Deal  # open, Ada's
    beta: Deal  # open, of Ada's account
    won: Deal  # closed won, Ada's: not suggested
    other: Deal  # open, unrelated: found by searching
    peers: Deal  # the peer's
    hidden: Deal  # another branch's


@pytest.fixture
def s(org, django_capture_on_commit_callbacks) -> Scene:  # type: ignore[no-untyped-def]
    account = f.account(org.rep, "Vendor Ltd")
    ada = f.contact(org.rep, SENDER, first_name="Ada", last_name="Sender", account=account)
    with django_capture_on_commit_callbacks(execute=True):
        note = deliver(org.rep, text_message("About the spring order", subject="Spring order"))
    return Scene(
        rep=org.rep,
        peer=org.peer,
        ada=ada,
        note=note,
        alpha=f.deal(org.rep, "Alpha order", contact=ada),
        beta=f.deal(org.rep, "Beta renewal", account=account),
        won=f.deal(org.rep, "Won order", stage_name="Closed Won", contact=ada),
        other=f.deal(org.rep, "Other project"),
        peers=f.deal(org.peer, "Peer project"),
        hidden=f.deal(org.outsider_manager, "Hidden project"),
    )


def page(client: Client, s: Scene, query: str = "") -> str:
    response = client.get(reverse("web:message", args=[s.note.pk]) + query)
    assert response.status_code == 200
    return response.content.decode()


def section(html: str) -> str:
    return html.split('<section id="deals"', 1)[1].split("</section>", 1)[0]


def offered(html: str, field: str = "deal") -> list[int]:
    """The deals a picker offers, in order."""
    return [int(pk) for pk in re.findall(rf'name="{field}" value="(\d+)"', html)]


def post(client: Client, name: str, s: Scene, *args: int, **data: object):  # type: ignore[no-untyped-def]
    return client.post(reverse(f"web:{name}", args=[s.note.pk, *args]), data)


def on_deal(viewer: User, deal: Deal) -> list[int]:
    return list(record_emails(viewer, "deals", deal.pk).values_list("pk", flat=True))


def deal_page_rows(client: Client, deal: Deal) -> list[int]:
    html = client.get(reverse("web:record_detail", args=["deals", deal.pk])).content.decode()
    return [int(pk) for pk in re.findall(r'class="email-subject" href="/messages/(\d+)/', html)]


def test_the_section_offers_the_open_deals_of_the_senders_contact_and_account(s, client_for):
    assert Link.objects.filter(message=s.note, module="contacts", record_id=s.ada.pk).exists()
    html = section(page(client_for(s.rep), s))
    assert "This message is not linked to a deal." in html
    assert "Link to a deal" in html and "Open deals of this message" in html
    assert offered(html) == [s.beta.pk, s.alpha.pk]  # most recently changed first
    assert 'aria-label="Link to Alpha order"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_linking_puts_the_message_on_the_deal_with_the_reason(s, client_for):
    client = client_for(s.rep)
    response = post(client, "message_deal_link", s, deal=s.alpha.pk)
    assert response.status_code == 302
    assert response["Location"] == reverse("web:message", args=[s.note.pk]) + "#deals"
    html = client.get(response["Location"]).content.decode()
    assert "Linked to the deal Alpha order." in html
    deals = section(html)
    assert f'href="/deals/{s.alpha.pk}/">Alpha order</a>' in deals
    assert f"Linked by {s.rep.name} on " in deals
    assert "Move to…" in deals and 'aria-label="Unlink from Alpha order"' in deals
    assert s.alpha.pk not in offered(deals) and s.beta.pk in offered(deals, "to_deal")
    assert on_deal(s.rep, s.alpha) == [s.note.pk]
    assert deal_page_rows(client, s.alpha) == [s.note.pk]
    row = client.get(reverse("web:record_detail", args=["deals", s.alpha.pk])).content.decode()
    assert f"<summary>Why is it here?</summary><ul><li>Linked by {s.rep.name} on " in row
    assert f'href="/messages/{s.note.pk}/?on=deals/{s.alpha.pk}#deals">Move to another deal' in row


def test_moving_takes_the_message_off_one_deal_and_onto_the_other(s, client_for):
    client = client_for(s.rep)
    post(client, "message_deal_link", s, deal=s.alpha.pk)
    response = post(client, "message_deal_move", s, s.alpha.pk, to_deal=s.other.pk)
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert "Moved from the deal Alpha order to the deal Other project." in html
    assert f'href="/deals/{s.other.pk}/">Other project</a>' in section(html)
    assert f'href="/deals/{s.alpha.pk}/"' not in section(html)
    assert on_deal(s.rep, s.alpha) == [] and on_deal(s.rep, s.other) == [s.note.pk]
    assert deal_page_rows(client, s.alpha) == [] and deal_page_rows(client, s.other) == [s.note.pk]


def test_unlinking_takes_it_back(s, client_for):
    client = client_for(s.rep)
    post(client, "message_deal_link", s, deal=s.beta.pk)
    response = post(client, "message_deal_unlink", s, s.beta.pk)
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert "Unlinked from the deal Beta renewal." in html
    assert "This message is not linked to a deal." in section(html)
    assert on_deal(s.rep, s.beta) == []
    assert not Link.objects.filter(message=s.note, module="deals").exists()


def test_searching_finds_deals_one_may_edit_by_name(s, client_for):
    ModuleDefault.objects.update_or_create(module="deals", defaults={"level": "public_read"})
    client = client_for(s.rep)
    choices = reverse("web:message_deal_choices", args=[s.note.pk])
    html = client.get(choices, {"deal_q": "PROJECT"}, HTTP_HX_REQUEST="true").content.decode()
    assert html.startswith('<div id="deal-choices-link"')
    assert offered(html) == [s.other.pk]  # not the peer's (view only), nor the hidden one
    assert "whose name contains “PROJECT”" in html
    assert offered(client.get(choices, {"deal_q": "order"}).content.decode()) == [
        s.alpha.pk,
        s.won.pk,  # closed deals come after the open ones
    ]
    nothing = client.get(choices, {"deal_q": "zzz"}).content.decode()
    assert "No other deal you may edit has “zzz” in its name." in nothing
    # NUL is not text: refused for every page's query string (crmail.text), never a 500.
    assert client.get(choices, {"deal_q": "a\x00b" * 200}).status_code == 400
    # Moving: the picker posts to the move address and leaves out the deals it is on.
    post(client, "message_deal_link", s, deal=s.alpha.pk)
    moving = client.get(choices, {"deal_q": "order", "move": s.alpha.pk}).content.decode()
    assert offered(moving, "to_deal") == [s.won.pk]
    assert reverse("web:message_deal_move", args=[s.note.pk, s.alpha.pk]) in moving
    assert client.get(choices, {"move": 10**12}).status_code == 404


def test_searching_works_without_script(s, client_for):
    client = client_for(s.rep)
    html = section(page(client, s, "?deal_q=other"))
    assert '<details class="deal-picker deal-add" open>' in html
    assert offered(html) == [s.other.pk]
    post(client, "message_deal_link", s, deal=s.alpha.pk)
    html = section(page(client, s, f"?deal_q=other&move={s.alpha.pk}"))
    assert offered(html, "to_deal") == [s.other.pk]
    assert offered(html) == [s.beta.pk]  # the link picker keeps its suggestions


def test_many_deals_are_offered_twenty_at_a_time(s, client_for):
    for n in range(25):
        f.deal(s.rep, f"Bulk deal {n}", contact=s.ada)
    client = client_for(s.rep)
    html = section(page(client, s))
    assert len(offered(html)) == 20
    choices = reverse("web:message_deal_choices", args=[s.note.pk])
    found = client.get(choices, {"deal_q": "bulk"}).content.decode()
    assert len(offered(found)) == 20 and "More deals match" in found


def test_mail_sent_from_a_deal_stays_on_it(s, client_for):
    links.link_sent(s.note, "deals", s.alpha.pk, s.rep)
    client = client_for(s.rep)
    html = section(page(client, s))
    assert "Sent from this deal in crmail." in html
    assert "Unlink" not in html.split("Link to a deal")[0] and "Move to…" not in html
    assert "stays linked here" in html
    response = post(client, "message_deal_unlink", s, s.alpha.pk)
    assert response.status_code == 302
    assert "so it stays linked there" in client.get(response["Location"]).content.decode()
    assert on_deal(s.rep, s.alpha) == [s.note.pk]


def test_refusals(s, client_for):
    client = client_for(s.rep)
    # A deal one may not view, or none at all: 404; one seen but not editable: 403.
    assert post(client, "message_deal_link", s, deal=s.hidden.pk).status_code == 404
    assert post(client, "message_deal_link", s, deal=10**12).status_code == 404
    assert post(client, "message_deal_unlink", s, s.hidden.pk).status_code == 404
    ModuleDefault.objects.update_or_create(module="deals", defaults={"level": "public_read"})
    assert post(client, "message_deal_link", s, deal=s.peers.pk).status_code == 403
    links.link_to_deal(s.peer, s.note, s.peers)
    html = section(page(client, s))
    assert "You may see this deal but not change its mail." in html
    assert post(client, "message_deal_unlink", s, s.peers.pk).status_code == 403
    assert post(client, "message_deal_move", s, s.peers.pk, to_deal=s.alpha.pk).status_code == 403
    post(client, "message_deal_link", s, deal=s.alpha.pk)
    assert post(client, "message_deal_move", s, s.alpha.pk, to_deal=s.peers.pk).status_code == 403
    # Input that makes no sense: back to the page, saying why.
    for name, args, data, words in (
        ("message_deal_link", (), {"deal": "abc"}, "Choose a deal"),
        ("message_deal_link", (), {}, "Choose a deal"),
        ("message_deal_link", (), {"deal": s.alpha.pk}, "already linked"),
        ("message_deal_move", (s.alpha.pk,), {"to_deal": s.alpha.pk}, "choose another"),
        ("message_deal_move", (s.alpha.pk,), {"to_deal": "x"}, "Choose the deal"),
        ("message_deal_move", (s.beta.pk,), {"to_deal": s.other.pk}, "not linked"),
        ("message_deal_unlink", (s.beta.pk,), {}, "not linked"),
    ):
        response = post(client, name, s, *args, **data)
        assert response.status_code == 302
        assert words in client.get(response["Location"]).content.decode()
    assert sorted(
        Link.objects.filter(message=s.note, module="deals").values_list("record_id", flat=True)
    ) == sorted([s.alpha.pk, s.peers.pk])
    # Only POST changes anything.
    url = reverse("web:message_deal_link", args=[s.note.pk])
    assert client.get(url, {"deal": s.beta.pk}).status_code == 405


def test_a_message_one_may_not_see_is_not_found(s, client_for):
    outsider = User.objects.get(email="east@crmail.test")
    client = client_for(outsider)
    theirs = f.deal(outsider, "East deal")
    assert post(client, "message_deal_link", s, deal=theirs.pk).status_code == 404
    assert post(client, "message_deal_unlink", s, theirs.pk).status_code == 404
    assert post(client, "message_deal_move", s, theirs.pk, to_deal=theirs.pk).status_code == 404
    choices = reverse("web:message_deal_choices", args=[s.note.pk])
    assert client.get(choices).status_code == 404
    assert not Link.objects.filter(message=s.note, module="deals").exists()


def test_changes_need_the_csrf_token(s):
    client = Client(enforce_csrf_checks=True)
    client.force_login(s.rep)
    assert post(client, "message_deal_link", s, deal=s.alpha.pk).status_code == 403
    assert not Link.objects.filter(message=s.note, module="deals").exists()


def test_unlinking_mail_one_saw_only_on_the_deal_goes_back_to_the_deal(s, client_for):
    actions.set_sharing(None, s.peer, mode="public")
    theirs = deliver(s.peer, text_message("Shared with the team", subject="Team note"))
    link(theirs, s.alpha)  # the rep sees the peer's shared mail through the deal only
    client = client_for(s.rep)
    url = reverse("web:message", args=[theirs.pk])
    assert client.get(url).status_code == 200
    response = client.post(reverse("web:message_deal_unlink", args=[theirs.pk, s.alpha.pk]))
    assert response["Location"] == reverse("web:record_detail", args=["deals", s.alpha.pk])
    assert (
        "Unlinked from the deal Alpha order." in client.get(response["Location"]).content.decode()
    )
    assert client.get(url).status_code == 404


def test_no_link_control_without_the_right_to_edit_deals(s, client_for):
    permissions = full_permissions() | {"deals": ["view"]}
    Profile.objects.filter(name="Standard").update(permissions=permissions)
    html = section(page(client_for(s.rep), s))
    assert "Link to a deal" not in html
