"""``/templates`` and sending with ``template_id`` through a real SMTP server."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.api.tests.test_send import sending_mailbox
from crmail.emailtemplates.models import EmailTemplate
from tests import factories as f

pytestmark = pytest.mark.django_db

QUOTE = {
    "name": "Quote follow-up",
    "subject": "Your quote for {{Deal.name}}",
    "body": (
        "Dear {{Contact.first_name}},\n\n{{Account.name}}: {{Deal.amount}}.\n\n{{User.signature}}"
    ),
}


def test_templates_are_made_read_changed_and_deleted_by_their_owner(org):
    rep = ApiClient(org.rep)
    made = rep.post("/templates", {**QUOTE, "shared": True})
    assert made.status_code == 201, made.content
    data = made.json()
    assert data["name"] == "Quote follow-up" and data["shared"] is True
    assert data["owner"]["email"] == "rep@crmail.test" and data["may_change"] is True
    tid = data["id"]

    listed = rep.get("/templates").json()
    assert [t["id"] for t in listed["items"]] == [tid] and listed["count"] == 1
    changed = rep.patch(f"/templates/{tid}", {"name": "Follow-up", "shared": False})
    assert changed.status_code == 200 and changed.json()["name"] == "Follow-up"
    assert changed.json()["body"] == QUOTE["body"]

    assert rep.delete(f"/templates/{tid}").status_code == 204
    assert rep.get(f"/templates/{tid}").status_code == 404
    assert not EmailTemplate.objects.exists()


def test_a_personal_template_is_hidden_and_a_shared_one_read_only_to_others(org):
    personal = ApiClient(org.rep).post("/templates", QUOTE).json()["id"]
    shared = ApiClient(org.rep).post("/templates", {**QUOTE, "shared": True}).json()["id"]
    peer = ApiClient(org.peer)
    assert [t["id"] for t in peer.get("/templates").json()["items"]] == [shared]
    assert peer.get(f"/templates/{personal}").status_code == 404
    assert peer.patch(f"/templates/{personal}", {"name": "x"}).status_code == 404
    assert peer.get(f"/templates/{shared}").json()["may_change"] is False
    refused = peer.patch(f"/templates/{shared}", {"name": "Mine now"})
    assert refused.status_code == 403 and "administrator" in refused.json()["detail"]
    assert peer.delete(f"/templates/{shared}").status_code == 403
    admin = ApiClient(org.admin)
    assert admin.patch(f"/templates/{shared}", {"name": "Tidied"}).status_code == 200
    assert admin.get(f"/templates/{personal}").status_code == 404
    assert admin.delete(f"/templates/{shared}").status_code == 204


def test_an_unknown_field_or_a_broken_subject_is_refused_when_saved(org):
    rep = ApiClient(org.rep)
    bad = rep.post("/templates", {**QUOTE, "body": "Hi {{Contact.owner.password}}"})
    assert bad.status_code == 422 and fields(bad) == {"body"}
    assert "{{Contact.owner.password}}" in bad.json()["detail"][0]["message"]
    bad = rep.post("/templates", {**QUOTE, "subject": "Hi\r\nBcc: x@else.example"})
    assert bad.status_code == 422 and fields(bad) == {"subject"}
    tid = rep.post("/templates", QUOTE).json()["id"]
    bad = rep.patch(f"/templates/{tid}", {"subject": "{{Deal.secret}}"})
    assert bad.status_code == 422 and fields(bad) == {"subject"}
    assert not EmailTemplate.objects.filter(subject__contains="secret").exists()


def deal_world(org):  # type: ignore[no-untyped-def]
    org.rep.signature = "Rex, Acme sales"
    org.rep.save(update_fields=["signature"])
    account = f.account(org.rep, "Initech")
    contact = f.contact(org.rep, "grace@client.example", first_name="Grace", account=account)
    return f.deal(org.rep, "Renewal", amount=12500, contact=contact)


def test_a_preview_fills_the_template_for_a_record_the_caller_may_see(org):
    deal = deal_world(org)
    rep = ApiClient(org.rep)
    tid = rep.post("/templates", {**QUOTE, "shared": True}).json()["id"]
    want = {
        "subject": "Your quote for Renewal",
        "body": "Dear Grace,\n\nInitech: 12,500.00.\n\nRex, Acme sales",
    }
    for record in (f"deals:{deal.pk}", {"module": "deals", "id": deal.pk}):
        answer = rep.post(f"/templates/{tid}/preview", {"record": record})
        assert answer.status_code == 200, answer.content
        assert answer.json() == want
    # The peer may use the template but not see the rep's deal.
    hidden = ApiClient(org.peer).post(f"/templates/{tid}/preview", {"record": f"deals:{deal.pk}"})
    assert hidden.status_code == 422 and fields(hidden) == {"record"}
    assert "Renewal" not in hidden.content.decode()
    badly = rep.post(f"/templates/{tid}/preview", {"record": "deals/1"})
    assert badly.status_code == 422 and fields(badly) == {"record"}
    missing = rep.post(f"/templates/{tid}/preview", {})
    assert missing.status_code == 422 and fields(missing) == {"subject"}
    assert "{{Deal.name}}" in missing.json()["detail"][0]["message"]


def test_a_message_sent_with_a_template_arrives_exactly_as_previewed(org, smtp_sink):
    deal = deal_world(org)
    sending_mailbox(org.rep, smtp_sink)
    rep = ApiClient(org.rep)
    tid = rep.post("/templates", QUOTE).json()["id"]
    previewed = rep.post(f"/templates/{tid}/preview", {"record": f"deals:{deal.pk}"}).json()
    sent = rep.post(
        "/messages/send",
        {
            "from": "rep@crmail.test",
            "to": ["grace@client.example"],
            "template_id": tid,
            "record": {"module": "deals", "id": deal.pk},
        },
    )
    assert sent.status_code == 201, sent.content
    [got] = smtp_sink.wait_for(1, 5)
    mail = message_from_bytes(got.data, policy=policy.default)
    assert mail["Subject"] == previewed["subject"] == "Your quote for Renewal"
    body = mail.get_body(("plain",)).get_content()
    assert body.replace("\r\n", "\n").rstrip("\n") == previewed["body"]


def test_sending_with_a_template_that_cannot_be_filled_sends_nothing(org, smtp_sink):
    deal = deal_world(org)
    contact = f.contact(org.rep, "solo@client.example", first_name="Solo")
    sending_mailbox(org.rep, smtp_sink)
    rep = ApiClient(org.rep)
    tid = rep.post("/templates", QUOTE).json()["id"]
    personal = ApiClient(org.peer).post("/templates", QUOTE).json()["id"]
    base = {"from": "rep@crmail.test", "to": ["grace@client.example"]}
    cases = [
        # The contact has no deal to fill {{Deal.name}} from.
        (
            {**base, "template_id": tid, "record": {"module": "contacts", "id": contact.pk}},
            "subject",
        ),
        # A template and a subject of one's own.
        (
            {
                **base,
                "template_id": tid,
                "subject": "Mine",
                "record": {"module": "deals", "id": deal.pk},
            },
            "subject",
        ),
        # Another user's personal template.
        (
            {**base, "template_id": personal, "record": {"module": "deals", "id": deal.pk}},
            "template_id",
        ),
        # Neither template nor subject.
        ({**base, "text": "Hi"}, "subject"),
    ]
    for request, field in cases:
        answer = rep.post("/messages/send", request)
        assert answer.status_code == 422, answer.content
        assert fields(answer) == {field}
    assert smtp_sink.wait_for(0, 0) == []
    hidden = f.deal(org.peer, "Peer's", contact=contact)
    answer = rep.post(
        "/messages/send",
        {**base, "template_id": tid, "record": {"module": "deals", "id": hidden.pk}},
    )
    assert answer.status_code == 404
