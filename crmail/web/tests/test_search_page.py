"""``/search/`` and the top bar's box: records and mail together, as the viewer may see them."""

from __future__ import annotations

import pytest

from crmail.search.tests.mail import deliver, raw
from crmail.sharing import actions
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(org, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    jane = f.contact(
        org.rep, "jane@customer.test", first_name="Jane", last_name="Doe", phone="+44 20 7946 0958"
    )
    deliver(
        django_capture_on_commit_callbacks,
        raw(
            "Jane Doe <jane@customer.test>",
            org.rep.email,
            "Contract <draft>",
            "Jane's signed contract",
            attachment="contract-final.pdf",
        ),
        to=[org.rep],
        on=[jane],
    )
    return org, jane


def test_the_top_bar_has_the_search_box_on_every_page(client_for, org):
    page = client_for(org.rep).get("/contacts/").content.decode()
    assert 'action="/search/"' in page and 'name="q"' in page


def test_finds_records_and_mail_together_with_marked_words(client_for, world):
    org, jane = world
    page = client_for(org.rep).get("/search/", {"q": "jane"}).content.decode()
    assert f'href="/contacts/{jane.pk}/"' in page
    assert "<mark>Jane</mark>" in page
    assert "Contract &lt;draft&gt;" in page and "<draft>" not in page
    assert "1 conversation" in page


def test_records_are_found_by_phone_and_mail_by_attachment_name(client_for, world):
    org, jane = world
    client = client_for(org.rep)
    assert f'href="/contacts/{jane.pk}/"' in client.get("/search/", {"q": "7946"}).content.decode()
    page = client.get("/search/", {"q": "final"}).content.decode()  # only in the file's name
    assert "Contract &lt;draft&gt;" in page and "1 conversation" in page


def test_filters_and_operators_on_the_page(client_for, world):
    org, _ = world
    client = client_for(org.rep)
    assert (
        "1 conversation"
        in client.get("/search/", {"q": "", "has_attachment": "on"}).content.decode()
    )
    assert (
        "0 conversations"
        in client.get("/search/", {"q": "contract", "sender": "bob"}).content.decode()
    )
    page = client.get("/search/", {"q": "before:someday"})
    assert page.status_code == 200
    assert "before: takes a day written YYYY-MM-DD" in page.content.decode()
    page = client.get("/search/", {"q": "contract", "sender": "@@"})
    assert "from: takes a name or an address" in page.content.decode()


def test_nobody_else_finds_private_mail(client_for, world):
    org, _ = world
    actions.set_sharing(None, org.rep, mode="private")
    page = client_for(org.manager).get("/search/", {"q": "contract"}).content.decode()
    assert "Contract" not in page and "0 conversations" in page
