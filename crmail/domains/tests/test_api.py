"""``/api/v1/domains``: an administrator adds a domain, confirms the mailed code, reads the
records, validates them against the test DNS server, deletes it; others get 403; bad
input answers 422 naming the field, in words."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest

from crmail.api.tests.conftest import ApiClient, fields
from crmail.domains.models import Domain

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(own_mail_sink):  # crmail's own mail, to a real SMTP sink
    return own_mail_sink


def mailed_code(sink) -> str:
    body = message_from_bytes(sink.wait_for(1)[-1].data, policy=policy.default).get_content()
    return re.search(r"\d{3} \d{3}", body).group(0)


def test_an_admin_authenticates_a_domain_through_the_api(org, zone, sink):
    api = ApiClient(org.admin)
    made = api.post("/domains", {"domain": "example.com", "address": "it@example.com"})
    assert made.status_code == 201, made.json()
    body = made.json()
    assert (body["name"], body["state"], body["records"]) == ("example.com", "unverified", [])
    pk = body["id"]
    early = api.post(f"/domains/{pk}/validate")
    assert early.status_code == 422
    assert fields(early) == {"code"}

    wrong = api.post(f"/domains/{pk}/confirm", {"code": "nope"})
    assert wrong.status_code == 422 and fields(wrong) == {"code"}
    confirmed = api.post(f"/domains/{pk}/confirm", {"code": mailed_code(sink)}).json()
    assert confirmed["state"] == "pending"
    spf, dkim = confirmed["records"]
    assert (spf["purpose"], spf["type"], spf["name"]) == ("SPF", "TXT", "example.com")
    assert dkim["name"].endswith("._domainkey.example.com")
    assert dkim["value"].startswith("v=DKIM1; k=rsa; p=")

    zone.add("example.com", "MX", "10 mx.example.com")  # the domain exists, without SPF
    pending = api.post(f"/domains/{pk}/validate").json()
    assert pending["state"] == "pending"
    assert pending["problems"][0].startswith("No SPF record: publish a TXT record at example.com")
    zone.add(spf["name"], "TXT", spf["value"])
    zone.add(dkim["name"], "TXT", dkim["value"])
    done = api.post(f"/domains/{pk}/validate").json()
    assert done["state"] == "authenticated"
    assert done["problems"] == []
    assert [f["record"] for f in done["findings"]] == ["SPF", "DKIM", "DMARC"]

    listed = api.get("/domains").json()
    assert listed["count"] == 1 and listed["items"][0]["state"] == "authenticated"
    assert api.delete(f"/domains/{pk}").status_code == 204
    assert api.get(f"/domains/{pk}").status_code == 404
    assert not Domain.objects.exists()


def test_input_is_refused_in_words_naming_the_field(org, sink):
    api = ApiClient(org.admin)
    elsewhere = api.post("/domains", {"domain": "example.com", "address": "me@gmail.com"})
    assert elsewhere.status_code == 422
    assert elsewhere.json()["detail"] == [
        {
            "field": "address",
            "message": "The code must go to an address at example.com (not me@gmail.com), so "
            "that only someone who receives mail there can enter it.",
        }
    ]
    bad = api.post("/domains", {"domain": "exa mple", "address": "a@b.c"})
    assert bad.status_code == 422 and fields(bad) == {"domain"}
    missing = api.post("/domains", {"domain": "example.com"})
    assert missing.status_code == 422 and fields(missing) == {"address"}


def test_only_administrators_manage_domains(org, sink):
    ApiClient(org.admin).post("/domains", {"domain": "example.com", "address": "it@example.com"})
    pk = Domain.objects.get().pk
    rep = ApiClient(org.rep)
    for answer in (
        rep.get("/domains"),
        rep.post("/domains", {"domain": "example.org", "address": "it@example.org"}),
        rep.get(f"/domains/{pk}"),
        rep.post(f"/domains/{pk}/validate"),
        rep.delete(f"/domains/{pk}"),
    ):
        assert answer.status_code == 403
        assert answer.json() == {"detail": "Only administrators manage email authentication."}
    assert Domain.objects.count() == 1
