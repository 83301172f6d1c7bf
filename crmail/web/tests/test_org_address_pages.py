"""Organisation addresses on the pages (SPEC F16): administrators add one and enter the
code mailed to a real SMTP sink; the composer offers those a profile allows, says whether
replies to them are tracked, and sends as them through a real SMTP server."""

from __future__ import annotations

import html
from email import message_from_bytes, policy

import pytest
from django.urls import reverse

from crmail.mailboxes.models import SentMessage
from crmail.orgaddresses.models import OrganisationAddress
from crmail.orgaddresses.tests.helpers import mailed_code, verified
from crmail.people.models import Profile
from crmail.web.tests.test_compose import field_errors, form, sending_mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db

LIST = "/settings/organisation-addresses/"


def _text(response) -> str:
    return html.unescape(response.content.decode())


def test_an_administrator_adds_an_address_and_enters_the_mailed_code(client, org, own_mail_sink):
    client.force_login(org.admin)
    sales = Profile.objects.create(name="Sales", permissions={})
    page = client.post(
        LIST + "new/",
        {"address": "Sales@Acme.example", "name": "Acme Sales", "profiles": [sales.pk]},
        follow=True,
    )
    added = OrganisationAddress.objects.get()
    assert page.redirect_chain[-1][0] == reverse("web:org_address_detail", args=[added.pk])
    text = _text(page)
    assert "A code was mailed to sales@acme.example" in text
    assert "Code sent" in text and "no one may send as it until the code is entered" in text
    code = mailed_code(own_mail_sink, to="sales@acme.example")

    wrong = client.post(f"{LIST}{added.pk}/verify/", {"code": "12345x"})
    assert field_errors(wrong, "code") == ["That code is not right (4 tries left)."]
    empty = client.post(f"{LIST}{added.pk}/verify/", {"code": ""})
    assert field_errors(empty, "code") == ["Enter the code mailed to the address."]
    done = client.post(f"{LIST}{added.pk}/verify/", {"code": code}, follow=True)
    assert "sales@acme.example is verified" in _text(done)
    added.refresh_from_db()
    assert added.verified

    listing = _text(client.get(LIST))
    assert "Verified" in listing
    assert "Administrators and the profile Sales" in listing
    assert (
        "Replies are not tracked: no mailbox connected over IMAP or POP receives "
        "sales@acme.example; connect it to see replies in crmail." in listing
    )
    desk = f.user("sales@acme.example", name="Dee Desk")  # the mailbox of the address
    sending_mailbox(desk, 1)
    assert (
        "Replies are tracked: the mailbox sales@acme.example (IMAP) of Dee Desk receives "
        "this address." in _text(client.get(LIST))
    )


def test_changing_the_address_mails_a_new_code_and_bad_input_is_said(client, org, own_mail_sink):
    client.force_login(org.admin)
    added = verified("sales@acme.example", everyone=True)
    bad = client.post(f"{LIST}{added.pk}/", {"address": "not an address", "name": "x\ny"})
    assert field_errors(bad, "address") == [
        "&#x27;not an address&#x27; is not a valid email address."
    ]
    assert field_errors(bad, "name") == ["The name may not contain line breaks."]
    verified("taken@acme.example")
    taken = client.post(f"{LIST}{added.pk}/", {"address": "taken@acme.example"})
    assert field_errors(taken, "address") == [
        "taken@acme.example is an organisation address already."
    ]
    moved = client.post(
        f"{LIST}{added.pk}/", {"address": "hello@acme.example", "everyone": "on"}, follow=True
    )
    assert "hello@acme.example is a new address to verify" in _text(moved)
    mailed_code(own_mail_sink, to="hello@acme.example")
    added.refresh_from_db()
    assert (added.address, added.verified) == ("hello@acme.example", False)
    again = client.post(f"{LIST}{added.pk}/code/", follow=True)
    assert "No code was sent: A code was sent to hello@acme.example just now; wait" in _text(again)

    gone = client.post(f"{LIST}{added.pk}/delete/", follow=True)
    assert "hello@acme.example was deleted" in _text(gone)
    assert not OrganisationAddress.objects.filter(pk=added.pk).exists()


def test_only_administrators_open_the_pages(client, org):
    added = verified("sales@acme.example", everyone=True)
    client.force_login(org.rep)
    for url in (LIST, LIST + "new/", f"{LIST}{added.pk}/", f"{LIST}{added.pk}/delete/"):
        assert client.get(url).status_code == 403
    assert client.post(f"{LIST}{added.pk}/delete/").status_code == 403
    assert OrganisationAddress.objects.exists()


def test_the_composer_offers_the_allowed_addresses_and_says_whether_replies_are_tracked(
    client, org, smtp_sink
):
    sending_mailbox(org.rep, smtp_sink.port)
    sales = Profile.objects.create(name="Sales", permissions={})
    verified("sales@acme.example", name="Acme Sales", everyone=True)
    verified("vip@acme.example", profiles=[sales])  # not the rep's profile
    OrganisationAddress.objects.create(address="new@acme.example", everyone=True)
    client.force_login(org.rep)
    page = _text(client.get(reverse("web:compose")))
    assert '<optgroup label="Organisation addresses">' in page
    assert '<option value="sales@acme.example">Acme Sales &lt;sales@acme.example&gt;' in (
        client.get(reverse("web:compose")).content.decode()
    )
    assert "vip@acme.example" not in page and "new@acme.example" not in page
    assert "Reply-To" in page
    assert "Replies are not tracked: no mailbox connected over IMAP or POP receives" in page

    refused = client.post(reverse("web:compose"), form(sender="vip@acme.example"))
    assert "Select a valid choice" in field_errors(refused, "sender")[0]
    sent = client.post(
        reverse("web:compose"),
        form(sender="sales@acme.example", reply_to="sales@acme.example"),
        follow=True,
    )
    text = _text(sent)
    assert "was sent" in text
    assert "Sent as sales@acme.example. Replies are not tracked" in text
    [got] = smtp_sink.wait_for(1, 5)
    mail = message_from_bytes(got.data, policy=policy.default)
    assert (mail["From"], mail["Reply-To"]) == (
        "Acme Sales <sales@acme.example>",
        "sales@acme.example",
    )
    assert SentMessage.objects.get().from_address == "sales@acme.example"


def test_without_organisation_addresses_the_composer_is_as_before(client, org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    client.force_login(org.rep)
    page = client.get(reverse("web:compose")).content.decode()
    assert "optgroup" not in page and "Reply-To" not in page and "compose_from.js" not in page


def test_a_reply_to_mail_sent_to_an_organisation_address_starts_from_it(client, org, smtp_sink):
    from crmail.web.tests.mail_samples import deliver
    from crmail.web.tests.test_reply import original, prefilled

    sending_mailbox(org.rep, smtp_sink.port)
    verified("sales@acme.example", everyone=True)
    message = deliver(org.rep, original(To="Sales <sales@acme.example>", Cc=""))
    client.force_login(org.rep)
    start = prefilled(client.get(f"{reverse('web:compose')}?message={message.pk}&mode=reply"))
    assert start["sender"] == "sales@acme.example"
    # Reply all answers everyone else, not the organisation address it goes out as.
    everyone = deliver(org.rep, original(To="Sales <sales@acme.example>, bob@vendor.example"))
    start = prefilled(client.get(f"{reverse('web:compose')}?message={everyone.pk}&mode=all"))
    assert start["sender"] == "sales@acme.example"
    assert "sales@acme.example" not in start["to"] + start["cc"]
    assert "bob@vendor.example" in start["to"] and "carl@client.example" in start["cc"]
    # Without the right to send as it, the reply starts from the rep's own address.
    OrganisationAddress.objects.update(everyone=False)
    start = prefilled(client.get(f"{reverse('web:compose')}?message={message.pk}&mode=reply"))
    assert start["sender"] == "rep@crmail.test"
