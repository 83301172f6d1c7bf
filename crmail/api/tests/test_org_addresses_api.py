"""``/organisation-addresses`` (SPEC F16): administrators add an address, have its code
mailed to a real SMTP sink and enter it; others list what they may send as, and
``/messages/send`` sends as it, or refuses it in words."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.api.tests.test_send import body, sending_mailbox
from crmail.orgaddresses.models import OrganisationAddress
from crmail.orgaddresses.tests.helpers import mailed_code, verified
from crmail.people.models import Profile

pytestmark = pytest.mark.django_db

PATH = "/organisation-addresses"


def test_add_mail_the_code_verify_and_change(org, own_mail_sink):
    admin = ApiClient(org.admin)
    sales = Profile.objects.create(name="Sales", permissions={})
    made = admin.post(PATH, {"address": "Sales@Acme.example", "profile_ids": [sales.pk]})
    assert made.status_code == 201, made.content
    item = made.json()
    assert (item["address"], item["verified"], item["may_send_as"]) == (
        "sales@acme.example",
        False,
        False,
    )
    assert item["profile_ids"] == [sales.pk] and item["replies_tracked"] is False
    assert item["replies"].startswith("Replies are not tracked: no mailbox connected")

    sent = admin.post(f"{PATH}/{item['id']}/send-code")
    assert sent.status_code == 202 and sent.json()["sent_to"] == "sales@acme.example"
    code = mailed_code(own_mail_sink, to="sales@acme.example")
    too_soon = admin.post(f"{PATH}/{item['id']}/send-code")
    assert too_soon.status_code == 409
    assert too_soon.json()["detail"].startswith("No code was sent: A code was sent to")
    assert admin.get(f"{PATH}/{item['id']}").json()["code_sent_at"] is not None

    wrong = admin.post(f"{PATH}/{item['id']}/verify", {"code": "abc"})
    assert wrong.status_code == 422 and fields(wrong) == {"code"}
    right = admin.post(f"{PATH}/{item['id']}/verify", {"code": code})
    assert right.status_code == 200
    assert right.json()["verified"] and right.json()["may_send_as"]  # administrators may

    changed = admin.patch(f"{PATH}/{item['id']}", {"address": "hello@acme.example"})
    assert changed.json()["verified"] is False  # a new address is proved again
    assert admin.patch(f"{PATH}/{item['id']}", {"profile_ids": [99999]}).status_code == 422
    assert admin.delete(f"{PATH}/{item['id']}").status_code == 204
    assert not OrganisationAddress.objects.exists()


def test_bad_input_is_answered_in_words(org):
    admin = ApiClient(org.admin)
    bad = admin.post(PATH, {"address": "nope", "name": "a\r\nb"})
    assert bad.status_code == 422 and fields(bad) == {"address", "name"}
    assert admin.post(PATH, {"address": "x@y.example", "extra": 1}).status_code == 422
    assert admin.post(f"{PATH}/999999/verify", {"code": "123456"}).status_code == 404


def test_others_see_only_what_they_may_send_as_and_change_nothing(org):
    sales = Profile.objects.create(name="Sales", permissions={})
    everyone = verified("hello@acme.example", everyone=True)
    vip = verified("vip@acme.example", profiles=[sales])
    OrganisationAddress.objects.create(address="new@acme.example", everyone=True)
    rep = ApiClient(org.rep)
    listed = rep.get(PATH).json()
    assert [i["address"] for i in listed["items"]] == ["hello@acme.example"]
    assert listed["items"][0]["may_send_as"] is True and listed["count"] == 1
    assert rep.get(f"{PATH}/{vip.pk}").status_code == 404
    assert ApiClient(org.admin).get(PATH).json()["count"] == 3
    for answer in (
        rep.post(PATH, {"address": "x@acme.example"}),
        rep.patch(f"{PATH}/{everyone.pk}", {"everyone": False}),
        rep.delete(f"{PATH}/{everyone.pk}"),
        rep.post(f"{PATH}/{everyone.pk}/send-code"),
        rep.post(f"{PATH}/{everyone.pk}/verify", {"code": "123456"}),
    ):
        assert answer.status_code == 403
        assert answer.json()["detail"] == "Only administrators manage organisation addresses."


def test_send_as_an_allowed_address_and_refused_for_another_profile(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink)
    sales = Profile.objects.create(name="Sales", permissions={})
    verified("hello@acme.example", name="Acme", everyone=True)
    verified("vip@acme.example", profiles=[sales])
    rep = ApiClient(org.rep)

    refused = rep.post("/messages/send", body(**{"from": "vip@acme.example"}))
    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {
            "field": "from",
            "message": "Your profile (Standard) may not send as the organisation address "
            "vip@acme.example: an administrator can allow it under Organisation addresses.",
        }
    ]
    refused = rep.post("/messages/send", body(reply_to="vip@acme.example"))
    assert refused.status_code == 422 and fields(refused) == {"reply_to"}
    assert not smtp_sink.messages

    sent = rep.post(
        "/messages/send", body(**{"from": "hello@acme.example", "reply_to": "hello@acme.example"})
    )
    assert sent.status_code == 201, sent.content
    assert sent.json()["from_address"] == "hello@acme.example"
    mail = message_from_bytes(smtp_sink.wait_for(1, 5)[0].data, policy=policy.default)
    assert (mail["From"], mail["Reply-To"]) == ("Acme <hello@acme.example>", "hello@acme.example")


def test_a_server_refusing_the_organisation_from_answers_502_in_words(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink)
    verified("hello@acme.example", everyone=True)
    smtp_sink.mail_response = "553 5.7.1 Sender address rejected: not owned by user"
    answer = ApiClient(org.rep).post("/messages/send", body(**{"from": "hello@acme.example"}))
    assert answer.status_code == 502
    assert (
        "mail servers often refuse a From address the mailbox does not own"
        in (answer.json()["detail"])
    )
