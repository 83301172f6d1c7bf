"""Record pages: who sees what, search, sort, pages, and forms that answer bad input."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from crmail.crm.models import Account, Contact, Deal
from crmail.people.models import AccessLevel, ModuleDefault
from tests import factories as f

pytestmark = pytest.mark.django_db


def list_url(module: str, **params: str) -> str:
    url = reverse("web:record_list", args=[module])
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def detail_url(record) -> str:
    return reverse("web:record_detail", args=[record.MODULE, record.pk])


def names_in(response) -> list[str]:
    """The record names in a list page's table, in order."""
    body = response.content.decode()
    table = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in body else ""
    return re.findall(r'<td data-label="Name"><a href="[^"]+">([^<]+)</a>', table)


# Visibility


def test_manager_sees_the_reps_contact_in_the_list_and_on_its_page(org, client_for):
    contact = f.contact(org.rep, "rita@client.example", last_name="Rita")
    client = client_for(org.manager)
    assert "Pat Rita" in names_in(client.get(list_url("contacts")))
    page = client.get(detail_url(contact))
    assert page.status_code == 200
    assert "rita@client.example" in page.content.decode()


def test_rep_does_not_see_the_managers_contact(org, client_for):
    contact = f.contact(org.manager, last_name="Bossman")
    client = client_for(org.rep)
    assert "Pat Bossman" not in names_in(client.get(list_url("contacts")))
    response = client.get(detail_url(contact))
    assert response.status_code == 404
    assert "not shared with you" in response.content.decode()
    assert "Bossman" not in response.content.decode()


@pytest.mark.parametrize("suffix", ["", "edit/", "delete/"])
def test_a_peer_gets_not_found_for_every_page_of_a_reps_contact(org, client_for, suffix):
    contact = f.contact(org.rep, last_name="Private")
    client = client_for(org.peer)
    assert client.get(detail_url(contact) + suffix).status_code == 404
    assert client.post(detail_url(contact) + suffix, {"last_name": "Hacked"}).status_code == 404
    contact.refresh_from_db()
    assert contact.last_name == "Private"


def test_outsider_manager_does_not_see_another_branch(org, client_for):
    f.contact(org.rep, last_name="Branch")
    assert names_in(client_for(org.outsider_manager).get(list_url("contacts"))) == []


def test_admin_sees_every_record(org, client_for):
    for owner in (org.manager, org.rep, org.peer, org.outsider_manager):
        f.contact(owner, last_name=f"Of{owner.name.split()[0]}")
    names = names_in(client_for(org.admin).get(list_url("contacts")))
    assert sorted(names) == ["Pat OfEve", "Pat OfMia", "Pat OfPia", "Pat OfRex"]


def test_public_read_only_shows_the_record_but_refuses_edits_with_a_message(org, client_for):
    ModuleDefault.objects.filter(module="contacts").update(level=AccessLevel.PUBLIC_READ)
    contact = f.contact(org.rep, last_name="Open")
    client = client_for(org.peer)
    page = client.get(detail_url(contact)).content.decode()
    assert "Pat Open" in page
    assert ">Edit<" not in page and ">Delete<" not in page
    response = client.get(detail_url(contact) + "edit/")
    assert response.status_code == 403
    assert "You can see this contact but not change it." in response.content.decode()


def test_buttons_show_for_the_owner(org, client_for):
    contact = f.contact(org.rep, last_name="Mine")
    page = client_for(org.rep).get(detail_url(contact)).content.decode()
    assert ">Edit<" in page and ">Delete<" in page


def test_related_lists_show_only_visible_records(org, client_for):
    account = f.account(org.rep, "Acme")
    f.contact(org.rep, last_name="Seen", account=account)
    f.contact(org.manager, last_name="Hidden", account=account)
    f.deal(org.rep, "Acme renewal", account=account)
    f.deal(org.manager, "Secret upsell", account=account)
    page = client_for(org.rep).get(detail_url(account)).content.decode()
    assert "Pat Seen" in page and "Acme renewal" in page
    assert "Hidden" not in page and "Secret upsell" not in page


def test_a_contact_shows_its_account_and_deals(org, client_for):
    account = f.account(org.rep, "Globex")
    contact = f.contact(org.rep, last_name="Linked", account=account)
    f.deal(org.rep, "Globex pilot", contact=contact)
    page = client_for(org.rep).get(detail_url(contact)).content.decode()
    assert f'href="{detail_url(account)}">Globex<' in page
    assert "Globex pilot" in page


def test_a_hidden_account_is_not_named_on_a_visible_contact(org, client_for):
    hidden = f.account(org.manager, "Manager Corp")
    contact = f.contact(org.rep, last_name="Mixed", account=hidden)
    client = client_for(org.rep)
    assert "Manager Corp" not in client.get(detail_url(contact)).content.decode()
    assert "Manager Corp" not in client.get(list_url("contacts")).content.decode()
    assert names_in(client.get(list_url("contacts", q="Manager"))) == []


# Search, sort, pages


def test_search_finds_by_name_email_and_account(org, client_for):
    acme = f.account(org.rep, "Acme Rockets")
    f.contact(org.rep, "wile@acme.example", last_name="Coyote", account=acme)
    f.contact(org.rep, "road@runner.example", last_name="Runner", secondary=("beep@fast.example",))
    client = client_for(org.rep)
    assert names_in(client.get(list_url("contacts", q="coyote"))) == ["Pat Coyote"]
    assert names_in(client.get(list_url("contacts", q="beep@fast"))) == ["Pat Runner"]
    assert names_in(client.get(list_url("contacts", q="rockets"))) == ["Pat Coyote"]
    assert names_in(client.get(list_url("contacts", q="Pat+Runner"))) == ["Pat Runner"]
    empty = client.get(list_url("contacts", q="nobody"))
    assert "No contacts match" in empty.content.decode()


def test_search_accounts_by_domain(org, client_for):
    f.account(org.rep, "Initech", domain="initech.example")
    f.account(org.rep, "Umbrella", domain="umbrella.example")
    names = names_in(client_for(org.rep).get(list_url("accounts", q="initech.ex")))
    assert names == ["Initech"]


def test_sort_by_column_both_ways_and_unknown_columns_are_ignored(org, client_for):
    for name in ("Bravo", "Alpha", "Charlie"):
        f.account(org.rep, name)
    client = client_for(org.rep)
    assert names_in(client.get(list_url("accounts", sort="name"))) == ["Alpha", "Bravo", "Charlie"]
    assert names_in(client.get(list_url("accounts", sort="-name"))) == [
        "Charlie",
        "Bravo",
        "Alpha",
    ]
    response = client.get(list_url("accounts", sort="owner__password"))
    assert response.status_code == 200
    assert names_in(response) == ["Alpha", "Bravo", "Charlie"]


def test_pages_of_twenty_five(org, client_for):
    for n in range(30):
        f.account(org.rep, f"Company {n:02d}")
    client = client_for(org.rep)
    first = client.get(list_url("accounts"))
    assert len(names_in(first)) == 25
    assert "page 1 of 2" in first.content.decode()
    second = client.get(list_url("accounts", page="2"))
    assert names_in(second) == [f"Company {n}" for n in range(25, 30)]
    assert client.get(list_url("accounts", page="99")).status_code == 200
    assert client.get(list_url("accounts", page="x")).status_code == 200


def test_htmx_requests_get_only_the_table(org, client_for):
    f.account(org.rep, "Solo")
    response = client_for(org.rep).get(
        list_url("accounts", q="solo"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="results"')
    assert "<html" not in body and "Solo" in body
    assert "HX-Request" in response["Vary"]


# Create and edit


def test_create_a_contact_with_a_secondary_email(org, client_for):
    client = client_for(org.rep)
    assert client.get(reverse("web:record_create", args=["contacts"])).status_code == 200
    response = client.post(
        reverse("web:record_create", args=["contacts"]),
        {
            "first_name": "Grace",
            "last_name": "Hopper",
            "email": "Grace@Navy.example",
            "secondary_emails": "grace@yale.example",
        },
    )
    contact = Contact.objects.get(last_name="Hopper")
    assert response["Location"] == detail_url(contact)
    assert contact.owner == org.rep
    assert contact.primary_email == "grace@navy.example"
    assert contact.secondary_emails == ["grace@yale.example"]


def test_a_bad_email_is_shown_next_to_the_field(org, client_for):
    response = client_for(org.rep).post(
        reverse("web:record_create", args=["contacts"]),
        {"last_name": "Broken", "email": "not-an-address"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "&#x27;not-an-address&#x27; is not a valid email address." in body
    email_field = (
        r'<div class="field has-error">\s*<div class="label-row"><label for="id_email">Email<'
    )
    assert re.search(email_field, body)
    assert 'value="Broken"' in body  # the form is shown again with what was typed
    assert not Contact.objects.exists()


def test_a_missing_required_field_names_the_field(org, client_for):
    response = client_for(org.rep).post(reverse("web:record_create", args=["accounts"]), {})
    assert response.status_code == 200
    assert 'href="#id_name">Name</a>: This field is required.' in response.content.decode()
    assert not Account.objects.exists()


def test_garbage_in_a_deal_form_never_fails_the_server(org, client_for):
    response = client_for(org.rep).post(
        reverse("web:record_create", args=["deals"]),
        {"name": "X", "amount": "lots", "stage": "999999", "closing_date": "tomorrow"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Amount</a>: Enter a number." in body
    assert not Deal.objects.exists()


def test_edit_saves_and_bad_input_keeps_the_record(org, client_for):
    contact = f.contact(org.rep, "old@x.example", last_name="Before")
    client = client_for(org.rep)
    edit = detail_url(contact) + "edit/"
    assert 'value="old@x.example"' in client.get(edit).content.decode()
    bad = client.post(edit, {"last_name": "After", "email": "nope"})
    assert bad.status_code == 200 and "Edit Pat Before" in bad.content.decode()
    contact.refresh_from_db()
    assert contact.last_name == "Before"
    good = client.post(edit, {"last_name": "After", "email": "new@x.example"})
    assert good["Location"] == detail_url(contact)
    contact.refresh_from_db()
    assert contact.last_name == "After" and contact.primary_email == "new@x.example"


def test_cannot_attach_a_hidden_account_through_the_form(org, client_for):
    hidden = f.account(org.manager, "Off limits")
    response = client_for(org.rep).post(
        reverse("web:record_create", args=["contacts"]),
        {"last_name": "Sneaky", "account": str(hidden.pk)},
    )
    assert response.status_code == 200
    assert "Account</a>: Select a valid choice." in response.content.decode()
    assert "Off limits" not in response.content.decode()


def test_delete_asks_then_deletes_on_post(org, client_for):
    contact = f.contact(org.rep, last_name="Doomed")
    client = client_for(org.rep)
    confirm = client.get(detail_url(contact) + "delete/")
    assert "Delete contact Pat Doomed?" in confirm.content.decode()
    assert Contact.objects.filter(pk=contact.pk).exists()
    response = client.post(detail_url(contact) + "delete/", follow=True)
    assert "The contact Pat Doomed was deleted." in response.content.decode()
    assert not Contact.objects.filter(pk=contact.pk).exists()


def test_home_counts_only_visible_records(org, client_for):
    f.contact(org.rep)
    f.contact(org.rep)
    f.contact(org.manager)
    body = client_for(org.rep).get(reverse("web:home")).content.decode()
    assert re.search(r'<span class="stat-count">2</span>\s*<span class="stat-label">Contacts', body)
