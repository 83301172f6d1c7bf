"""The compose page: from a record or on its own, through a real SMTP sink."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from typing import Any

import pytest
from django.urls import reverse

from crmail.mailboxes.models import Mailbox, SentMessage
from tests import factories as f

pytestmark = pytest.mark.django_db


def sending_mailbox(owner, port: int, **extra: Any) -> Mailbox:  # type: ignore[no-untyped-def]
    return Mailbox.objects.create(
        owner=owner,
        email=owner.email,
        protocol="imap",
        host="127.0.0.1",
        port=1,
        security="none",
        login=owner.email,
        secret="pw",
        smtp_host=extra.pop("smtp_host", "127.0.0.1"),
        smtp_port=port,
        smtp_security="none",
        smtp_same_credentials=False,
        **{"store_sent_on_server": False, **extra},
    )


def compose_url(record: Any = None) -> str:
    if record is None:
        return reverse("web:compose")
    return reverse("web:record_compose", args=[record.MODULE, record.pk])


def form(**extra: str) -> dict[str, str]:
    return {
        "sender": "rep@crmail.test",
        "to": "grace@client.example",
        "cc": "",
        "bcc": "",
        "subject": "Your quote",
        "body": "Here it is.\n\nRex",
        **extra,
    }


def field_errors(response: Any, name: str) -> list[str]:
    """The error texts shown under the field ``name``."""
    return re.findall(rf'<p class="error" id="id_{name}_error">([^<]*)</p>', response.text)


def to_value(response: Any) -> str:
    match = re.search(r'<input type="text" name="to" value="([^"]*)"', response.text)
    return match.group(1) if match else ""


# ----------------------------------------------------------------- the page itself


@pytest.mark.parametrize("module", ["contacts", "leads", "accounts", "deals"])
def test_every_record_page_has_a_send_email_button(org, client_for, module):
    record = {
        "contacts": lambda: f.contact(org.rep, "a@client.example"),
        "leads": lambda: f.lead(org.rep, "a@client.example"),
        "accounts": lambda: f.account(org.rep),
        "deals": lambda: f.deal(org.rep),
    }[module]()
    page = client_for(org.rep).get(reverse("web:record_detail", args=[module, record.pk]))
    assert f'href="{compose_url(record)}">Send email</a>' in page.text
    assert client_for(org.rep).get(compose_url(record)).status_code == 200


def test_the_contact_address_and_the_from_addresses_fill_the_form(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port, extra_from_addresses=["Sales@crmail.test"])
    contact = f.contact(org.rep, "Grace@Client.example", first_name="Grace", last_name="Hopper")
    page = client_for(org.rep).get(compose_url(contact))
    assert page.status_code == 200
    assert "Email Grace Hopper" in page.text
    assert to_value(page) == "grace@client.example"
    options = re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', page.text)
    assert options == [
        ("rep@crmail.test", "Rex Rep &lt;rep@crmail.test&gt;"),
        ("sales@crmail.test", "Rex Rep &lt;sales@crmail.test&gt;"),
    ]
    assert re.search(r'<option value="rep@crmail.test" selected>', page.text)


def test_a_lead_deal_and_account_give_their_contacts_address(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    client = client_for(org.rep)
    assert to_value(client.get(compose_url(f.lead(org.rep, "lee@lead.example")))) == (
        "lee@lead.example"
    )
    account = f.account(org.rep, "Acme")
    f.contact(org.rep, last_name="Zed", account=account)  # no address: skipped
    f.contact(org.rep, "buyer@acme.example", last_name="Buyer", account=account)
    assert to_value(client.get(compose_url(account))) == "buyer@acme.example"
    own = f.deal(org.rep, contact=f.contact(org.rep, "deal@acme.example"), account=account)
    assert to_value(client.get(compose_url(own))) == "deal@acme.example"
    through_account = f.deal(org.rep, account=account)
    assert to_value(client.get(compose_url(through_account))) == "buyer@acme.example"
    assert to_value(client.get(compose_url(f.deal(org.rep)))) == ""


def test_an_address_the_user_may_not_see_is_never_filled_in(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    account = f.account(org.rep, "Acme")
    f.contact(org.manager, "secret@acme.example", account=account)
    deal = f.deal(org.rep, contact=f.contact(org.manager, "hidden@acme.example"))
    client = client_for(org.rep)
    for record in (account, deal):
        page = client.get(compose_url(record))
        assert to_value(page) == "" and "acme.example" not in page.text


def test_a_record_the_user_may_not_see_answers_404(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    hidden = f.contact(org.manager, "boss@client.example")
    client = client_for(org.rep)
    assert client.get(compose_url(hidden)).status_code == 404
    assert client.post(compose_url(hidden), form()).status_code == 404
    assert smtp_sink.messages == [] and not SentMessage.objects.exists()


def test_signing_in_is_required(org):
    from django.test import Client

    response = Client().get(compose_url())
    assert response.status_code == 302 and "/sign-in/" in response["Location"]


# ---------------------------------------------------------------------- sending


def test_sending_from_a_contact_delivers_it_and_returns_to_the_contact(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    contact = f.contact(org.rep, "grace@client.example")
    client = client_for(org.rep)
    response = client.post(compose_url(contact), form(cc="a@client.example; b@client.example"))
    assert response.status_code == 302
    assert response["Location"] == reverse("web:record_detail", args=["contacts", contact.pk])
    [got] = smtp_sink.wait_for(1, 5)
    assert sorted(got.rcpt_tos) == ["a@client.example", "b@client.example", "grace@client.example"]
    mail = message_from_bytes(got.data, policy=policy.default)
    assert mail["From"] == "Rex Rep <rep@crmail.test>" and mail["Subject"] == "Your quote"
    assert mail.get_content().replace("\r\n", "\n").strip() == "Here it is.\n\nRex"
    sent = SentMessage.objects.get()
    assert (sent.record_module, sent.record_id) == ("contacts", contact.pk)
    page = client.get(response["Location"])
    assert "Your email “Your quote” was sent." in page.text


def test_the_plain_compose_page_is_in_the_navigation_and_sends(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    client = client_for(org.rep)
    home = client.get(reverse("web:home"))
    assert f'href="{compose_url()}"' in home.text
    page = client.get(compose_url() + "?to=ada@example.org")
    assert page.status_code == 200 and "New email" in page.text
    assert to_value(page) == "ada@example.org"
    response = client.post(compose_url(), form(to="ada@example.org", bcc="me@crmail.test"))
    assert response.status_code == 302 and response["Location"] == reverse("web:home")
    [got] = smtp_sink.wait_for(1, 5)
    assert sorted(got.rcpt_tos) == ["ada@example.org", "me@crmail.test"]
    assert b"me@crmail.test" not in got.data.split(b"\r\n\r\n", 1)[0]  # no Bcc header
    assert SentMessage.objects.get().record_module == ""


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"subject": "Hello\r\nBcc: victim@else.example"}, "subject", "line breaks"),
        ({"to": "grace@client.example\r\nBcc: victim@else.example"}, "to", "line breaks"),
        ({"cc": "not an address"}, "cc", "is not a valid email address"),
        ({"to": ""}, "to", "This field is required."),
        ({"to": ", ;"}, "to", "Add at least one recipient."),
        ({"sender": "ceo@crmail.test"}, "sender", "Select a valid choice."),
    ],
)
def test_errors_are_shown_in_words_next_to_their_field(
    org, client_for, smtp_sink, change, field, words
):
    sending_mailbox(org.rep, smtp_sink.port)
    contact = f.contact(org.rep, "grace@client.example")
    response = client_for(org.rep).post(compose_url(contact), form(**change))
    assert response.status_code == 200
    assert any(words in e for e in field_errors(response, field)), response.text
    assert "The email was not sent" in response.text
    assert smtp_sink.messages == [] and not SentMessage.objects.exists()


def test_a_refusing_outgoing_server_is_explained(org, client_for, smtp_sink_factory):
    strict = smtp_sink_factory(username="rex", password="right", auth_required=True)
    sending_mailbox(org.rep, strict.port, smtp_login="rex", smtp_secret="wrong")
    response = client_for(org.rep).post(compose_url(), form())
    assert response.status_code == 200
    assert "The outgoing server did not take the message" in response.text
    assert not SentMessage.objects.exists()


def test_without_an_active_mailbox_the_page_says_where_to_connect_one(org, client_for):
    client = client_for(org.rep)
    contact = f.contact(org.rep, "grace@client.example")
    for response in (client.get(compose_url(contact)), client.post(compose_url(contact), form())):
        assert response.status_code == 200
        assert "You have no active mailbox" in response.text
        assert f'href="{reverse("web:mailboxes")}"' in response.text
        assert 'name="subject"' not in response.text  # no form to fill in for nothing
    assert not SentMessage.objects.exists()


def test_a_mailbox_without_an_outgoing_server_is_explained(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port, smtp_host="")
    response = client_for(org.rep).get(compose_url())
    assert "has no outgoing (SMTP) server" in response.text
    assert f'href="{reverse("web:mailboxes")}"' in response.text
