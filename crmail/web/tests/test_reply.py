"""Reply, reply all and forward from the message page, checked in what a real SMTP sink got."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from crmail.api.tests.conftest import ApiClient
from crmail.linking.models import Link, Reason
from crmail.mail.models import Message, ParseState
from crmail.mailboxes.models import SentMessage
from crmail.web.tests.mail_samples import PDF, deliver
from crmail.web.tests.test_compose import sending_mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db

ORIGINAL_ID = "offer-3@vendor.example"


def original(**headers: str) -> bytes:
    """A customer's answer in an older thread, with a Reply-To and an attachment."""
    msg = EmailMessage()
    fields = {
        "From": "Ada Sender <ada@vendor.example>",
        "Reply-To": "Ada Desk <desk@vendor.example>",
        "To": "Rex Rep <rep@crmail.test>, bob@vendor.example",
        "Cc": "carl@client.example, Sales <sales@crmail.test>",
        "Subject": "RE: Re: Fwd: Spring offer",
        "Message-ID": f"<{ORIGINAL_ID}>",
        "In-Reply-To": "<offer-2@crmail.test>",
        "References": "<offer-1@vendor.example> <offer-2@crmail.test>",
        **headers,
    }
    for name, value in fields.items():
        if value:
            msg[name] = value
    msg["Date"] = format_datetime(datetime(2026, 12, 3, 9, 30, tzinfo=UTC))
    msg.set_content("Thanks, the price works.\n\nCan you send the contract?\n")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="terms.pdf")
    return msg.as_bytes()


@pytest.fixture
def mailbox(org, smtp_sink):  # type: ignore[no-untyped-def]
    return sending_mailbox(
        org.rep,
        smtp_sink.port,
        extra_from_addresses=["sales@crmail.test"],
        display_name="Acme Sales",
    )


def compose_url(message: Any, mode: str, record: Any = None) -> str:
    base = (
        reverse("web:record_compose", args=[record.MODULE, record.pk])
        if record is not None
        else reverse("web:compose")
    )
    return f"{base}?message={message.pk}&mode={mode}"


def prefilled(page: Any) -> dict[str, str]:
    """The values the composer starts with."""
    text = page.text
    values = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="text" name="(\w+)" value="([^"]*)"', text)
    }
    body = re.search(r'<textarea name="body"[^>]*>(.*?)</textarea>', text, re.S)
    values["body"] = html.unescape(body.group(1)) if body else ""
    selected = re.search(r'<option value="([^"]+)" selected>', text)
    values["sender"] = selected.group(1) if selected else ""
    return values


def send_as_shown(client: Any, url: str, **changes: Any) -> Any:
    data = prefilled(client.get(url))
    data.setdefault("bcc", "")
    return client.post(url, {**data, **changes})


def received(sink: Any) -> EmailMessage:
    [got] = sink.wait_for(1)
    return message_from_bytes(got.data, policy=policy.default)  # type: ignore[return-value]


def test_reply_is_threaded_quoted_and_goes_to_the_reply_to_address(
    org, client_for, smtp_sink, mailbox
):
    message = deliver(org.rep, original())
    client = client_for(org.rep)
    page = client.get(reverse("web:message", args=[message.pk]))
    assert f'href="{compose_url(message, "reply")}">Reply</a>'.replace("&", "&amp;") in page.text
    start = prefilled(client.get(compose_url(message, "reply")))
    assert start["to"] == "desk@vendor.example"
    assert start.get("cc", "") == ""
    assert start["subject"] == "Re: Spring offer"
    assert start["sender"] == "rep@crmail.test"  # the address it was sent to
    assert "On 3 Dec 2026, Ada Sender wrote:\n> Thanks, the price works.\n>\n>" in start["body"]

    response = send_as_shown(
        client, compose_url(message, "reply"), body="Here it is.\n\n" + start["body"]
    )
    assert response.status_code == 302
    got = received(smtp_sink)
    assert got["Subject"] == "Re: Spring offer"
    assert got["In-Reply-To"] == f"<{ORIGINAL_ID}>"
    assert " ".join(got["References"].split()) == (
        f"<offer-1@vendor.example> <offer-2@crmail.test> <{ORIGINAL_ID}>"
    )
    assert got["From"] == "Acme Sales <rep@crmail.test>"  # the mailbox's name
    assert got["To"] == "desk@vendor.example"
    text = got.get_body(("plain",)).get_content()
    assert text.startswith("Here it is.")
    assert "> Can you send the contract?" in text
    assert not [p for p in got.iter_attachments()]  # a reply carries no attachments
    # Answered again, the subject still has one prefix.
    sent = SentMessage.objects.get()
    again = prefilled(client.get(compose_url(sent.message, "reply")))
    assert again["subject"] == "Re: Spring offer"


def test_reply_all_adds_to_and_cc_without_the_users_own_addresses(
    org, client_for, smtp_sink, mailbox
):
    message = deliver(org.rep, original(**{"Reply-To": ""}))
    start = prefilled(client_for(org.rep).get(compose_url(message, "all")))
    assert start["to"] == "ada@vendor.example, bob@vendor.example"
    assert start["cc"] == "carl@client.example"  # not sales@crmail.test: the rep's own
    send_as_shown(client_for(org.rep), compose_url(message, "all"))
    [got] = smtp_sink.wait_for(1)
    assert sorted(got.rcpt_tos) == [
        "ada@vendor.example",
        "bob@vendor.example",
        "carl@client.example",
    ]


def test_forward_carries_the_originals_attachments_and_new_files(
    org, client_for, smtp_sink, mailbox
):
    message = deliver(org.rep, original())
    client = client_for(org.rep)
    url = compose_url(message, "forward")
    page = client.get(url)
    start = prefilled(page)
    assert start.get("to", "") == "" and start["subject"] == "Fwd: Spring offer"
    assert "terms.pdf" in page.text.split("Forwarded with the message")[1]
    assert "---------- Forwarded message ----------" in start["body"]
    assert "From: Ada Sender <ada@vendor.example>" in start["body"]
    upload = SimpleUploadedFile("notes.txt", b"call on Monday", content_type="text/plain")
    response = client.post(url, {**start, "to": "legal@client.example", "bcc": "", "files": upload})
    assert response.status_code == 302
    got = received(smtp_sink)
    assert got["Subject"] == "Fwd: Spring offer"
    assert got["References"].endswith(f"<{ORIGINAL_ID}>")
    files = {p.get_filename(): p.get_content() for p in got.iter_attachments()}
    assert files == {"terms.pdf": PDF, "notes.txt": "call on Monday"}


def test_a_viewer_who_may_not_see_the_message_cannot_answer_it(org, client_for, smtp_sink, mailbox):
    message = deliver(org.rep, original())  # the rep's private mail
    sending_mailbox(org.peer, smtp_sink.port)
    client = client_for(org.peer)
    for mode in ("reply", "all", "forward"):
        assert client.get(compose_url(message, mode)).status_code == 404
        posted = client.post(
            compose_url(message, mode),
            {"sender": "peer@crmail.test", "to": "x@client.example", "subject": "s", "body": ""},
        )
        assert posted.status_code == 404
    assert client.get(f"{reverse('web:compose')}?message=99999&mode=reply").status_code == 404
    assert client.get(f"{reverse('web:compose')}?message=abc&mode=reply").status_code == 404
    assert client.get(f"{reverse('web:compose')}?message={message.pk}&mode=x").status_code == 404
    assert smtp_sink.messages == []


def test_attachments_over_the_limit_are_refused_in_words(
    org, client_for, smtp_sink, mailbox, monkeypatch
):
    monkeypatch.setattr("crmail.mailboxes.sending.DEFAULT_MESSAGE_LIMIT", 1000)
    client = client_for(org.rep)
    big = SimpleUploadedFile("big.bin", b"x" * 1500, content_type="application/octet-stream")
    response = client.post(
        reverse("web:compose"),
        {"sender": "rep@crmail.test", "to": "grace@client.example", "subject": "s", "files": big},
    )
    assert response.status_code == 200
    assert "The attachments come to 1.5\xa0KB; crmail takes at most 1000\xa0bytes a message." in (
        html.unescape(response.text)
    )
    assert smtp_sink.messages == []
    small = SimpleUploadedFile("small.txt", b"ok", content_type="text/plain")
    client.post(
        reverse("web:compose"),
        {"sender": "rep@crmail.test", "to": "grace@client.example", "subject": "s", "files": small},
    )
    got = received(smtp_sink)
    assert [p.get_filename() for p in got.iter_attachments()] == ["small.txt"]


def test_an_upload_past_the_cap_is_not_kept_on_disk_and_the_form_says_so(
    org, client_for, smtp_sink, mailbox, monkeypatch, settings
):
    monkeypatch.setattr("crmail.web.views.compose.upload_cap", lambda: 1000)
    monkeypatch.setattr("crmail.mailboxes.sending.DEFAULT_MESSAGE_LIMIT", 1000)
    kept = []
    monkeypatch.setattr(
        "crmail.web.views.compose.CappedUploadHandler.file_complete",
        lambda self, size: kept.append(size),
    )
    big = SimpleUploadedFile("big.bin", b"x" * 200_000, content_type="application/octet-stream")
    response = client_for(org.rep).post(
        reverse("web:compose"),
        {"sender": "rep@crmail.test", "to": "grace@client.example", "subject": "s", "files": big},
    )
    assert response.status_code == 200
    assert "The attachments come to more than" in response.text
    assert "crmail takes at most 1000\xa0bytes a message." in html.unescape(response.text)
    assert kept == [] and smtp_sink.messages == []


def test_the_composer_still_checks_its_csrf_token(org, mailbox):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(org.rep)
    response = client.post(
        reverse("web:compose"),
        {"sender": "rep@crmail.test", "to": "grace@client.example", "subject": "s"},
    )
    assert response.status_code == 403


def test_a_message_crmail_could_not_read_offers_no_answer_and_says_why(
    org, client_for, smtp_sink, mailbox
):
    message = deliver(org.rep, original())
    Message.objects.filter(pk=message.pk).update(parse_state=ParseState.FAILED)
    client = client_for(org.rep)
    page = client.get(reverse("web:message", args=[message.pk]))
    assert ">Reply</a>" not in page.text and ">Forward</a>" not in page.text
    response = client.get(compose_url(message, "reply"), follow=True)
    assert "crmail could not read this message, so it cannot be answered here." in response.text
    assert ApiClient(org.rep).post(f"/messages/{message.pk}/reply", {}).status_code == 409


def test_a_forwarded_files_name_with_a_line_break_is_sent_on_one_line(
    org, client_for, smtp_sink, mailbox
):
    raw = original().replace(b'filename="terms.pdf"', b"filename*=utf-8''terms%0D%0Apdf.pdf")
    message = deliver(org.rep, raw)
    url = compose_url(message, "forward")
    start = prefilled(client_for(org.rep).get(url))
    client_for(org.rep).post(url, {**start, "to": "legal@client.example", "bcc": ""})
    got = received(smtp_sink)
    assert [p.get_filename() for p in got.iter_attachments()] == ["terms pdf.pdf"]


def test_an_answer_is_recorded_where_the_original_is_and_the_page_leads_back(
    org, client_for, smtp_sink, mailbox, django_capture_on_commit_callbacks
):
    grace = f.contact(org.rep, "ada@vendor.example", first_name="Ada", last_name="Sender")
    hidden = f.contact(org.outsider_manager, "bob@vendor.example", last_name="Hidden")
    deal = f.deal(org.rep, "Spring deal")
    with django_capture_on_commit_callbacks(execute=True):
        message = deliver(org.rep, original())
    Link.objects.create(
        message=message,
        module="deals",
        record_id=deal.pk,
        reason=Reason.MANUAL,
        created_at=timezone.now(),
    )
    client = client_for(org.rep)
    page = client.get(f"{reverse('web:message', args=[message.pk])}?on=contacts/{grace.pk}")
    crumbs = re.search(r'<nav class="crumbs".*?</nav>', page.text, re.S).group(0)
    assert f'href="{reverse("web:record_detail", args=["contacts", grace.pk])}">Ada Sender</a>' in (
        crumbs
    )
    detail = reverse("web:record_detail", args=["contacts", grace.pk])
    assert f'<a class="person" href="{detail}">Ada Sender &lt;ada@vendor.example&gt;</a>' in (
        page.text
    )
    assert f"/contacts/{hidden.pk}/" not in page.text  # a record the rep may not see
    assert '<span class="person">bob@vendor.example</span>' in page.text
    url = compose_url(message, "reply", record=grace)
    assert url.replace("&", "&amp;") in page.text

    with django_capture_on_commit_callbacks(execute=True):
        assert send_as_shown(client, url).status_code == 302
    sent = SentMessage.objects.get()
    on = set(Link.objects.filter(message=sent.message).values_list("module", "record_id"))
    assert ("contacts", grace.pk) in on and ("deals", deal.pk) in on
    assert ("contacts", hidden.pk) not in on
