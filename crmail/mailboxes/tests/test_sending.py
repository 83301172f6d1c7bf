"""Sending from crmail through real SMTP, with the Sent copy on a real Dovecot."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from crmail.mail.compose import ComposeError, Draft
from crmail.mail.models import Message
from crmail.mail.store import raw_bytes
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.drivers.base import AuthFailed
from crmail.mailboxes.models import Location, Mailbox, SentMessage
from crmail.mailboxes.sending import SendingNotPossible, send_message
from crmail.mailboxes.sync import sync_mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(dovecot, smtp_sink):
    user_name, password = dovecot.new_user()
    dovecot.create_mailbox(user_name, "Sent")
    rep = f.user("rep@crmail.test")
    mailbox = Mailbox.objects.create(
        owner=rep,
        email="rep@crmail.test",
        protocol="imap",
        host="127.0.0.1",
        port=dovecot.imap_port,
        security="none",
        login=user_name,
        secret=password,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_security="none",
        smtp_same_credentials=False,  # the sink takes mail without a login
        extra_from_addresses=["sales@crmail.test"],
    )
    return dovecot, user_name, smtp_sink, rep, mailbox


def draft(**kw) -> Draft:
    return Draft(
        **{
            "sender": "rep@crmail.test",
            "to": ["client@example.com"],
            "subject": "Your offer",
            "text": "Here it is.",
            **kw,
        }
    )


def test_a_sent_message_goes_out_is_stored_and_filed_in_sent(setup):
    dovecot, user_name, sink, rep, mailbox = setup
    sent = send_message(rep, draft(), record_module="contacts", record_id=7)
    [got] = sink.wait_for(1, 5)
    assert got.rcpt_tos == ["client@example.com"]
    message = Message.objects.get(pk=sent.message_id)
    assert message.subject == "Your offer" and message.from_address == "rep@crmail.test"
    assert (sent.record_module, sent.record_id, sent.sent_copy_error) == ("contacts", 7, "")
    [on_server] = dovecot.messages(user_name, "Sent")
    assert "\\Seen" in on_server["flags"]
    assert on_server["message_id"].strip("<>") == message.message_id
    # A later sync knows the copy already: one message, one location, nothing fetched.
    driver = open_driver(mailbox)
    report = sync_mailbox(mailbox, driver)
    driver.close()
    assert report.fetched == 0
    assert Location.objects.filter(message=message).count() == 1


def test_an_extra_from_address_may_be_used_and_others_may_not(setup):
    _, _, sink, rep, _ = setup
    send_message(rep, draft(sender="sales@crmail.test"))
    assert sink.wait_for(1, 5)[0].mail_from == "sales@crmail.test"
    with pytest.raises(ComposeError) as err:
        send_message(rep, draft(sender="ceo@crmail.test"))
    assert err.value.field == "from"


def test_providers_that_file_sent_mail_themselves_get_no_second_copy(setup):
    dovecot, user_name, sink, rep, mailbox = setup
    mailbox.provider = "gmail"
    mailbox.save()
    send_message(rep, draft())
    sink.wait_for(1, 5)
    assert dovecot.messages(user_name, "Sent") == []


def test_nothing_is_stored_when_the_server_refuses(setup, smtp_sink_factory):
    _, _, _, rep, mailbox = setup
    strict = smtp_sink_factory(username="rex", password="right", auth_required=True)
    mailbox.smtp_port = strict.port
    mailbox.smtp_same_credentials = False
    mailbox.smtp_login, mailbox.smtp_secret = "rex", "wrong"
    mailbox.save()
    with pytest.raises(AuthFailed):
        send_message(rep, draft())
    assert not SentMessage.objects.exists() and not Message.objects.exists()


def test_without_a_mailbox_there_is_nothing_to_send_with():
    with pytest.raises(SendingNotPossible, match="Connect a mailbox"):
        send_message(f.user(), draft())


def test_mail_sent_from_a_deal_is_on_the_deal_and_on_its_recipients(
    setup, django_capture_on_commit_callbacks
):
    from crmail.linking.models import Link

    _, _, sink, rep, _ = setup
    client = f.contact(rep, "Client@Example.com")
    deal = f.deal(rep, contact=client)
    with django_capture_on_commit_callbacks(execute=True):
        sent = send_message(rep, draft(), record_module="deals", record_id=deal.pk)
    sink.wait_for(1, 5)
    links = set(
        Link.objects.filter(message=sent.message).values_list("module", "record_id", "reason")
    )
    assert links == {("deals", deal.pk, "sent_from_record"), ("contacts", client.pk, "address")}


def test_a_rich_message_is_the_same_bytes_in_the_sink_in_crmail_and_in_sent(setup):
    dovecot, user_name, sink, rep, _mailbox = setup
    sent = send_message(
        rep,
        draft(
            text="",
            html="<p>Here <b>it</b> is.<script>steal()</script></p>",
            attachments=[("terms.txt", "text/plain", b"Terms.")],
        ),
    )
    [got] = sink.wait_for(1, 5)
    stored = raw_bytes(Message.objects.get(pk=sent.message_id))
    assert got.data == stored
    [row] = dovecot.doveadm_json("fetch", "-u", user_name, "text", "mailbox", "Sent", "all")
    assert row["text"].replace("\r\n", "\n").encode() == stored.replace(b"\r\n", b"\n")
    mail = message_from_bytes(stored, policy=policy.default)
    assert mail.get_content_type() == "multipart/mixed"
    alternative, attachment = mail.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert attachment.get_filename() == "terms.txt"
    text, html = alternative.iter_parts()
    assert text.get_content().strip() == "Here it is."  # taken from the HTML
    assert "<b>it</b>" in html.get_content() and "script" not in html.get_content()
