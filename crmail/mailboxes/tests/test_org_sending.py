"""Sending as an organisation address (SPEC F16) through the user's own mailbox to a real
SMTP server, refused for a profile that is not allowed, and whether replies are tracked."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from crmail.mail.compose import ComposeError, Draft
from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.models import Mailbox, SentMessage
from crmail.mailboxes.org_addresses import organisation_senders, tracking
from crmail.mailboxes.sending import send_message
from crmail.orgaddresses.tests.helpers import verified
from crmail.people.models import Profile
from tests import factories as f

pytestmark = pytest.mark.django_db


def _mailbox(owner, email: str, *, smtp_port: int = 1, **fields) -> Mailbox:
    return Mailbox.objects.create(
        owner=owner,
        email=email,
        protocol=fields.pop("protocol", "imap"),
        host="127.0.0.1",
        port=1,
        security="none",
        login=email,
        secret="pw",
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_security="none",
        smtp_same_credentials=False,
        store_sent_on_server=False,
        **fields,
    )


@pytest.fixture
def rep(smtp_sink):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    _mailbox(rep, "rep@crmail.test", smtp_port=smtp_sink.port)
    return rep


def _draft(**kw) -> Draft:
    return Draft(
        **{
            "sender": "rep@crmail.test",
            "to": ["ann@customer.example"],
            "subject": "Offer",
            "text": "Hello.",
            **kw,
        }
    )


def test_a_user_sends_as_an_organisation_address_through_their_own_mailbox(rep, smtp_sink):
    verified("sales@acme.example", name="Acme Sales", everyone=True)
    sent = send_message(rep, _draft(sender="Sales@Acme.example", reply_to="sales@acme.example"))

    [got] = smtp_sink.wait_for(1, 5)
    mail = message_from_bytes(got.data, policy=policy.default)
    assert mail["From"] == "Acme Sales <sales@acme.example>"
    assert mail["Reply-To"] == "sales@acme.example"
    assert got.mail_from == "sales@acme.example"
    assert got.rcpt_tos == ["ann@customer.example"]
    assert sent.from_address == "sales@acme.example"
    assert sent.mailbox.email == "rep@crmail.test"  # through the user's own mailbox


def test_without_a_name_it_carries_the_senders_and_reply_to_may_point_at_it(rep, smtp_sink):
    verified("support@acme.example", everyone=True)
    send_message(rep, _draft(sender="support@acme.example"))
    send_message(rep, _draft(reply_to="support@acme.example"))  # From stays the rep's own
    first, second = (
        message_from_bytes(m.data, policy=policy.default) for m in smtp_sink.wait_for(2, 5)
    )
    assert first["From"] == "Rex Rep <support@acme.example>"
    assert first["Reply-To"] is None
    assert second["From"] == "Rex Rep <rep@crmail.test>"
    assert second["Reply-To"] == "support@acme.example"


def test_an_address_the_profile_does_not_allow_is_refused_in_words(rep, smtp_sink):
    sales = Profile.objects.create(name="Sales", permissions={})
    verified("sales@acme.example", profiles=[sales])
    verified("hidden@acme.example", everyone=False)
    with pytest.raises(ComposeError) as err:
        send_message(rep, _draft(sender="sales@acme.example"))
    assert err.value.field == "from"
    assert str(err.value).startswith(
        "Your profile (Standard) may not send as the organisation address sales@acme.example"
    )
    with pytest.raises(ComposeError) as err:
        send_message(rep, _draft(reply_to="hidden@acme.example"))
    assert err.value.field == "reply_to"
    with pytest.raises(ComposeError, match="neither an address of this mailbox"):
        send_message(rep, _draft(reply_to="someone@else.example"))
    with pytest.raises(ComposeError, match="line breaks"):
        send_message(rep, _draft(reply_to="sales@acme.example\r\nBcc: x@y.example"))
    assert not smtp_sink.messages and not SentMessage.objects.exists()


def test_an_unverified_address_is_refused(rep, smtp_sink):
    from crmail.orgaddresses.models import OrganisationAddress

    OrganisationAddress.objects.create(address="sales@acme.example", everyone=True)
    with pytest.raises(ComposeError, match="not verified yet"):
        send_message(rep, _draft(sender="sales@acme.example"))
    assert not smtp_sink.messages


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("mail", "The server refused the sender address sales@acme.example"),
        ("data", "The server refused the message"),
    ],
)
def test_a_server_that_refuses_the_from_address_is_explained(rep, smtp_sink, where, said):
    verified("sales@acme.example", everyone=True)
    refusal = "553 5.7.1 Sender address rejected: not owned by user rep@crmail.test"
    if where == "mail":
        smtp_sink.mail_response = refusal
    else:
        smtp_sink.data_response = refusal
    with pytest.raises(DriverError) as err:
        send_message(rep, _draft(sender="sales@acme.example"))
    words = str(err.value)
    assert said in words and "not owned by user" in words
    assert "mail servers often refuse a From address the mailbox does not own" in words
    assert "Let rep@crmail.test send as sales@acme.example at its provider" in words
    assert not SentMessage.objects.exists()
    # The user's own address refused is said as before, with no word of organisation addresses.
    with pytest.raises(DriverError) as err:
        send_message(rep, _draft())
    assert "organisation address" not in str(err.value)


def test_replies_are_tracked_only_through_a_mailbox_connected_over_imap_or_pop(rep):
    owner = f.user("desk@crmail.test", name="Dee Desk")
    _mailbox(owner, "Sales@acme.example")  # IMAP, active
    _mailbox(owner, "pop@acme.example", protocol="pop3", is_active=False)
    other = f.user("other@crmail.test", name="Otto")
    _mailbox(other, "pop@acme.example", protocol="pop3")
    _mailbox(f.user(), "gmail@acme.example", protocol="gmail")
    _mailbox(f.user(), "idle@acme.example", is_active=False)
    got = tracking(
        [
            "sales@acme.example",
            "pop@acme.example",
            "gmail@acme.example",
            "idle@acme.example",
            "none@acme.example",
        ]
    )
    assert got["sales@acme.example"].tracked
    assert got["sales@acme.example"].words == (
        "Replies are tracked: the mailbox Sales@acme.example (IMAP) of Dee Desk receives "
        "this address."
    )
    assert got["pop@acme.example"].tracked
    assert "(POP) of Otto" in got["pop@acme.example"].words
    assert not got["gmail@acme.example"].tracked
    assert "is read through the Gmail API, not over IMAP or POP" in got["gmail@acme.example"].words
    assert not got["idle@acme.example"].tracked
    assert "is not active" in got["idle@acme.example"].words
    assert got["none@acme.example"] == tracking(["none@acme.example"])["none@acme.example"]
    assert got["none@acme.example"].words == (
        "Replies are not tracked: no mailbox connected over IMAP or POP receives "
        "none@acme.example; connect it to see replies in crmail."
    )


def test_the_from_choices_list_the_allowed_verified_addresses(rep):
    sales = Profile.objects.create(name="Sales", permissions={})
    verified("b-support@acme.example", everyone=True)
    verified("a-sales@acme.example", name="Acme Sales", everyone=True)
    verified("only-sales@acme.example", profiles=[sales])
    verified("rep@crmail.test", everyone=True)  # the mailbox's own: offered once, as its own
    from crmail.orgaddresses.models import OrganisationAddress

    OrganisationAddress.objects.create(address="unverified@acme.example", everyone=True)
    mailbox = Mailbox.objects.get(owner=rep)
    choices = organisation_senders(rep, mailbox)
    assert [(c.address, c.label) for c in choices] == [
        ("a-sales@acme.example", "Acme Sales <a-sales@acme.example>"),
        ("b-support@acme.example", "Rex Rep <b-support@acme.example>"),
    ]
    assert organisation_senders(rep, None) == []
