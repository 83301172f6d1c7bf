"""The template pages (list, editor, preview) and the composer's "Use template"."""

from __future__ import annotations

import html
import re
from email import message_from_bytes, policy
from typing import Any

import pytest
from django.urls import reverse

from crmail.emailtemplates import actions
from crmail.emailtemplates.models import EmailTemplate
from crmail.web.tests.test_compose import compose_url, form, sending_mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db

BODY = "Dear {{Contact.first_name}},\n\nabout {{Deal.name}} for {{Account.name}}.\n\n{{User.name}}"


def editor(**extra: str) -> dict[str, str]:
    return {"name": "Follow-up", "subject": "About {{Deal.name}}", "body": BODY, **extra}


def preview_text(response: Any) -> str:
    found = re.search(r'<pre class="preview-body">(.*?)</pre>', response.text, re.S)
    return html.unescape(found.group(1)) if found else ""


def a_deal(org):  # type: ignore[no-untyped-def]
    account = f.account(org.rep, "Initech")
    contact = f.contact(org.rep, "grace@client.example", first_name="Grace", account=account)
    return f.deal(org.rep, "Renewal", contact=contact)


def test_a_template_is_made_listed_changed_and_deleted_from_the_pages(org, client_for):
    client = client_for(org.rep)
    assert 'href="/templates/"' in client.get("/").text
    made = client.post(reverse("web:template_create"), editor(shared="on"))
    assert made.status_code == 302 and made["Location"] == reverse("web:templates")
    template = EmailTemplate.objects.get()
    assert (template.owner, template.shared, template.body) == (org.rep, True, BODY)
    listed = client.get(reverse("web:templates")).text
    assert "Follow-up" in listed and "Shared" in listed

    edit = reverse("web:template_edit", args=[template.pk])
    assert client.post(edit, editor(name="Renamed")).status_code == 302
    template.refresh_from_db()
    assert template.name == "Renamed" and template.shared is False

    deleted = client.post(reverse("web:template_delete", args=[template.pk]))
    assert deleted.status_code == 302 and not EmailTemplate.objects.exists()


def test_an_unknown_field_is_shown_beside_the_field_and_nothing_is_saved(org, client_for):
    response = client_for(org.rep).post(
        reverse("web:template_create"), editor(body="Hi {{Contact.owner.password}}")
    )
    assert response.status_code == 200
    assert "{{Contact.owner.password}}" in html.unescape(response.text)
    assert 'id="id_body_error"' in response.text
    assert not EmailTemplate.objects.exists()


def test_the_preview_button_fills_the_template_for_a_record_without_saving(org, client_for):
    deal = a_deal(org)
    response = client_for(org.rep).post(
        reverse("web:template_create"), editor(record=f"deals:{deal.pk}", preview="1")
    )
    assert response.status_code == 200
    assert preview_text(response) == "Dear Grace,\n\nabout Renewal for Initech.\n\nRex Rep"
    assert "About Renewal" in response.text
    assert not EmailTemplate.objects.exists()


def test_the_live_preview_answers_the_preview_alone(org, client_for):
    deal = a_deal(org)
    client = client_for(org.rep)
    response = client.post(
        reverse("web:template_preview"), editor(record=f"deals:{deal.pk}"), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "<html" not in response.text
    assert preview_text(response).startswith("Dear Grace,")
    hidden = f.deal(org.peer, "Peer's secret deal", contact=f.contact(org.peer, first_name="Zed"))
    refused = client.post(reverse("web:template_preview"), editor(record=f"deals:{hidden.pk}"))
    assert refused.status_code == 200
    assert "secret" not in refused.text and "Zed" not in refused.text
    assert preview_text(refused) == ""


def test_others_see_shared_templates_read_only_and_never_personal_ones(org, client_for):
    shared = actions.do_create_template(org.rep, name="Ours", body="Shared body", shared=True)
    personal = actions.do_create_template(org.rep, name="Mine", body="Private body")
    client = client_for(org.peer)
    listed = client.get(reverse("web:templates")).text
    assert "Ours" in listed and "Mine" not in listed
    assert client.get(reverse("web:template_edit", args=[personal.pk])).status_code == 404
    page = client.get(reverse("web:template_edit", args=[shared.pk])).text
    assert "read-only" in listed and "Only they or an administrator" in page
    assert 'name="save"' not in page and "Delete template" not in page
    client.post(reverse("web:template_edit", args=[shared.pk]), editor(name="Taken"))
    assert client.post(reverse("web:template_delete", args=[shared.pk])).status_code == 403
    shared.refresh_from_db()
    assert shared.name == "Ours"
    admin = client_for(org.admin)
    assert admin.post(reverse("web:template_delete", args=[shared.pk])).status_code == 302


def test_use_template_fills_subject_and_message_for_the_record_keeping_what_was_typed(
    org, client_for, smtp_sink
):
    sending_mailbox(org.rep, smtp_sink.port)
    deal = a_deal(org)
    template = actions.do_create_template(
        org.peer, name="Follow-up", subject="About {{Deal.name}}", body=BODY, shared=True
    )
    client = client_for(org.rep)
    page = client.get(compose_url(deal)).text
    assert "Use template" in page and "Follow-up" in page
    filled = client.post(
        compose_url(deal),
        form(
            cc="boss@client.example",
            subject="",
            body="",
            template=str(template.pk),
            use_template="1",
        ),
    )
    assert filled.status_code == 200 and not smtp_sink.wait_for(0, 0)
    text = html.unescape(filled.text)
    assert 'value="About Renewal"' in text and 'value="boss@client.example"' in text
    assert "Dear Grace,\n\nabout Renewal for Initech.\n\nRex Rep" in text

    sent = client.post(
        compose_url(deal),
        form(subject="About Renewal", body="Dear Grace,\n\nabout Renewal for Initech.\n\nRex Rep"),
    )
    assert sent.status_code == 302
    [got] = smtp_sink.wait_for(1, 5)
    mail = message_from_bytes(got.data, policy=policy.default)
    assert mail["Subject"] == "About Renewal"
    assert mail.get_content().replace("\r\n", "\n").strip().startswith("Dear Grace,")


def test_a_template_that_cannot_be_filled_says_which_field_and_keeps_the_message(
    org, client_for, smtp_sink
):
    sending_mailbox(org.rep, smtp_sink.port)
    contact = f.contact(org.rep, "solo@client.example", first_name="Solo")
    template = actions.do_create_template(org.rep, name="Deal note", body="{{Deal.amount}}")
    response = client_for(org.rep).post(
        compose_url(contact),
        form(body="My own words", template=str(template.pk), use_template="1"),
    )
    text = html.unescape(response.text)
    assert "{{Deal.amount}}" in text and "My own words" in text
    assert smtp_sink.wait_for(0, 0) == []


def test_a_template_without_a_subject_keeps_the_subject_typed(org, client_for, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    template = actions.do_create_template(org.rep, name="Sign-off", body="Best,\n{{User.name}}")
    response = client_for(org.rep).post(
        compose_url(),
        form(subject="Lunch on Friday", template=str(template.pk), use_template="1"),
    )
    text = html.unescape(response.text)
    assert 'value="Lunch on Friday"' in text and "Best,\nRex Rep" in text
