"""``html`` on ``/messages/send``, ``/reply`` and ``/forward``: cleaned, beside a text part."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from django.test import Client

from crmail.api.tests.conftest import ApiClient
from crmail.api.tests.test_send import body, sending_mailbox
from crmail.web.tests.mail_samples import PDF, deliver
from crmail.web.tests.test_reply import ORIGINAL_ID, original

pytestmark = pytest.mark.django_db

HOSTILE = (
    '<h2 onmouseover="steal()">Spring offer</h2><p>See <a href="jav&#9;ascript:steal()">'
    'this</a> and <a href="https://acme.example/terms">the terms</a>.</p>'
    '<img src="https://tracker.example/pixel.gif"><svg><script>steal()</script></svg>'
)


def received(sink: Any) -> EmailMessage:
    [got] = sink.wait_for(1, 5)
    return message_from_bytes(got.data, policy=policy.default)  # type: ignore[return-value]


def parts(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    return text, mail.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_send_with_only_html_derives_the_text_and_cleans_the_html(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink)
    response = ApiClient(org.rep).post("/messages/send", body(text="", html=HOSTILE))
    assert response.status_code == 201, response.content
    mail = received(smtp_sink)
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    text, markup = parts(mail)
    assert text.strip() == "Spring offer\n\nSee this and the terms <https://acme.example/terms>."
    assert "<h2>Spring offer</h2>" in markup
    assert '<a href="https://acme.example/terms"' in markup
    for gone in ("onmouseover", "steal", "ascript", "tracker.example", "<svg", "<script"):
        assert gone not in markup, gone


def test_a_reply_in_html_threads_and_quotes_the_original_in_both_parts(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink)
    message = deliver(org.rep, original())
    response = ApiClient(org.rep).post(
        f"/messages/{message.pk}/reply", {"html": "<p>The <b>contract</b> is attached.<p"}
    )
    assert response.status_code == 201, response.content
    mail = received(smtp_sink)
    assert mail["In-Reply-To"] == f"<{ORIGINAL_ID}>"
    assert mail["Subject"] == "Re: Spring offer"
    text, markup = parts(mail)
    assert text.startswith(
        "The contract is attached.\n\nOn 3 Dec 2026, Ada Sender wrote:\n"
        "> Thanks, the price works.\n>\n> Can you send the contract?"
    )
    # What the caller left open does not swallow the quote.
    assert re.search(
        r"<p>The <b>contract</b> is attached\.</p>\s*<div>On 3 Dec 2026, Ada Sender wrote:</div>"
        r"<blockquote>Thanks, the price works\.<br><br>Can you send the contract\?</blockquote>",
        markup,
    ), markup


def test_a_reply_with_text_and_html_keeps_the_text_given(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink)
    message = deliver(org.rep, original())
    ApiClient(org.rep).post(
        f"/messages/{message.pk}/reply",
        {"text": "Attached, as promised.", "html": "<p>Attached.</p>", "quote": False},
    )
    text, markup = parts(received(smtp_sink))
    assert text.strip() == "Attached, as promised."
    assert "<p>Attached.</p>" in markup and "blockquote" not in markup


def test_a_forward_in_html_is_mixed_around_the_alternative(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink)
    message = deliver(org.rep, original())
    response = ApiClient(org.rep).post(
        f"/messages/{message.pk}/forward",
        {"to": ["legal@client.example"], "html": "<p>For <i>legal</i>.</p>"},
    )
    assert response.status_code == 201, response.content
    mail = received(smtp_sink)
    assert mail.get_content_type() == "multipart/mixed"
    alternative, pdf = mail.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert (pdf.get_filename(), pdf.get_content()) == ("terms.pdf", PDF)
    text, markup = parts(mail)
    assert text.startswith("For legal.\n\n---------- Forwarded message ----------\n")
    assert "<blockquote>---------- Forwarded message ----------<br>From: Ada Sender" in markup


def test_the_schema_documents_html(db):
    doc = Client().get("/api/v1/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in ("SendIn", "ReplyIn", "ForwardIn"):
        description = schemas[name]["properties"]["html"]["description"]
        assert "cleaned as crmail cleans mail it shows" in description
        assert "multipart/alternative" in description
