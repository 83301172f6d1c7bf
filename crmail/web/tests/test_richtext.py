"""Rich text from the composer: what the editor posts, as the SMTP sink receives it."""

from __future__ import annotations

import html
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from crmail.emailtemplates import actions
from crmail.mail.display import clean_html
from crmail.mailboxes.models import SentMessage
from crmail.web.tests.mail_samples import deliver
from crmail.web.tests.test_compose import compose_url, form, sending_mailbox
from crmail.web.tests.test_reply import ORIGINAL_ID, original, prefilled
from crmail.web.tests.test_reply import compose_url as answer_url

pytestmark = pytest.mark.django_db

HOSTILE = (
    '<p onclick="steal()" style="color: red; position: fixed">Dear <b>Grace</b>,</p>'
    "<script>steal()</script><ul><li>one</li><li>two</li></ul>"
    '<a href="javascript:steal()">a trap</a> <a href="https://acme.example/offer">the offer</a>'
    '<img src="https://tracker.example/open.gif" width="1" height="1">'
    '<iframe src="https://evil.example/"></iframe><form><input name="x"></form>'
)


def received(sink: Any) -> EmailMessage:
    [got] = sink.wait_for(1, 5)
    return message_from_bytes(got.data, policy=policy.default)  # type: ignore[return-value]


def parts(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    markup = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return text, markup


def test_the_html_is_cleaned_as_display_cleans_it_beside_the_text_typed(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    response = client_for(org.rep).post(
        compose_url(), form(body="Dear Grace,\n\n- one\n- two", body_html=HOSTILE)
    )
    assert response.status_code == 302
    mail = received(smtp_sink)
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    text, markup = parts(mail)
    assert text.strip() == "Dear Grace,\n\n- one\n- two"  # the text as the editor gave it
    assert "<b>Grace</b>" in markup and "<li>one</li>" in markup
    assert '<a href="https://acme.example/offer"' in markup
    for gone in ("onclick", "steal", "script", "position", "tracker.example", "iframe", "<form"):
        assert gone not in markup, gone
    assert 'style="color: red"' in markup
    # The very cleaner that shows mail, with remote images held back.
    assert markup.strip() == clean_html(HOSTILE, inline_url=lambda _: None).html


def test_with_only_html_the_text_part_is_the_text_of_the_html(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    client_for(org.rep).post(compose_url(), form(body="", body_html=HOSTILE))
    text, _ = parts(received(smtp_sink))
    assert text.strip() == (
        "Dear Grace,\n\n- one\n- two\n\na trap the offer <https://acme.example/offer>"
    )


def test_without_the_editor_the_message_is_plain_text(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    page = client_for(org.rep).get(compose_url())
    assert '<input type="hidden" name="body_html" id="id_body_html">' in page.text
    assert 'data-editor="rich"' in page.text
    assert "/static/crmail/editor.js" in page.text
    client_for(org.rep).post(compose_url(), form(body_html=""))
    mail = received(smtp_sink)
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().replace("\r\n", "\n").strip() == "Here it is.\n\nRex"


def test_the_editor_starts_from_the_signature_as_html(org, client_for, smtp_sink):
    org.rep.signature = "Rex Rep\n<Acme> & Sons"
    org.rep.save(update_fields=["signature"])
    sending_mailbox(org.rep, smtp_sink.port)
    page = client_for(org.rep).get(compose_url())
    start = re.search(r'data-rich-start="([^"]*)"', page.text)
    assert start is not None
    assert html.unescape(start.group(1)) == "<br><br>-- <br>Rex Rep<br>&lt;Acme&gt; &amp; Sons<br>"


def test_a_rich_reply_threads_and_quotes_in_a_blockquote(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port, display_name="Acme Sales")
    message = deliver(org.rep, original())
    client = client_for(org.rep)
    url = answer_url(message, "reply")
    page = client.get(url)
    rich = html.unescape(re.search(r'data-rich-start="([^"]*)"', page.text).group(1))  # type: ignore[union-attr]
    assert rich == (
        "<br><br><br><div>On 3 Dec 2026, Ada Sender wrote:</div>"
        "<blockquote>Thanks, the price works.<br><br>Can you send the contract?</blockquote>"
    )
    data = prefilled(page)
    data.update(bcc="", body="Here it is.\n" + data["body"], body_html="<b>Here</b> it is." + rich)
    assert client.post(url, data).status_code == 302

    mail = received(smtp_sink)
    assert mail["In-Reply-To"] == f"<{ORIGINAL_ID}>"
    assert mail["From"] == "Acme Sales <rep@crmail.test>"
    text, markup = parts(mail)
    assert text.startswith("Here it is.\n")  # the text part as the editor gave it
    assert "\nOn 3 Dec 2026, Ada Sender wrote:\n> Thanks, the price works.\n>\n" in text
    assert "<b>Here</b> it is." in markup
    assert re.search(
        r"On 3 Dec 2026, Ada Sender wrote:</div><blockquote>Thanks, the price works.<br><br>"
        r"Can you send the contract\?</blockquote>",
        markup,
    )


def test_a_rich_forward_quotes_the_forwarded_block(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    message = deliver(org.rep, original())
    page = client_for(org.rep).get(answer_url(message, "forward"))
    rich = html.unescape(re.search(r'data-rich-start="([^"]*)"', page.text).group(1))  # type: ignore[union-attr]
    assert "<blockquote>---------- Forwarded message ----------<br>From: Ada Sender" in rich
    assert "&lt;ada@vendor.example&gt;" in rich


def test_sent_rich_mail_shows_with_its_formatting_in_crmail(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    client = client_for(org.rep)
    client.post(compose_url(), form(body="", body_html="<p>A <b>bold</b> <i>offer</i></p>"))
    sent = SentMessage.objects.get()
    frame = client.get(f"/messages/{sent.message_id}/body/").content.decode()
    assert "<b>bold</b> <i>offer</i>" in frame


def test_a_template_starts_the_editor_again_from_its_text(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    template = actions.do_create_template(
        org.rep, name="Thanks", subject="Hello", body="Dear customer,\nthanks.", shared=False
    )
    typed = form(body_html="<b>typed</b>", template=str(template.pk), use_template="1")
    page = client_for(org.rep).post(compose_url(), typed)
    assert '<input type="hidden" name="body_html" id="id_body_html">' in page.text
    assert "Dear customer,\nthanks.</textarea>" in page.text
    # A template that is not chosen leaves what was written, formatting and all.
    page = client_for(org.rep).post(compose_url(), {**typed, "template": ""})
    assert 'name="body_html" value="&lt;b&gt;typed&lt;/b&gt;"' in page.text
