"""The email authentication pages (administrators only) and the composer's warning for a
From address whose domain is not authenticated."""

from __future__ import annotations

import html
import re
from email import message_from_bytes, policy

import pytest
from django.urls import reverse

from crmail.domains import keys
from crmail.domains.models import Domain, State
from crmail.domains.tests.conftest import make_domain, publish
from crmail.mailboxes.models import Mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(own_mail_sink):  # crmail's own mail, to a real SMTP sink
    return own_mail_sink


def text(answer) -> str:
    return html.unescape(" ".join(answer.content.decode().split()))


def test_only_administrators_see_the_pages(client, org):
    domain = make_domain()
    client.force_login(org.rep)
    for url in (
        "/settings/domains/",
        f"/settings/domains/{domain.pk}/",
        f"/settings/domains/{domain.pk}/delete/",
    ):
        assert client.get(url).status_code == 403
    assert client.post(f"/settings/domains/{domain.pk}/validate/").status_code == 403
    assert (
        client.post("/settings/domains/", {"domain": "x.com", "address": "a@x.com"}).status_code
        == 403
    )
    client.force_login(org.admin)
    page = text(client.get("/settings/domains/"))
    assert "Email authentication" in page and "example.com" in page


def test_the_wizard_from_the_code_to_authenticated(client, org, zone, sink):
    client.force_login(org.admin)
    refused = client.post(
        "/settings/domains/", {"domain": "example.com", "address": "me@gmail.com"}
    )
    assert refused.status_code == 200
    assert "The code must go to an address at example.com (not me@gmail.com)" in text(refused)

    added = client.post(
        "/settings/domains/", {"domain": "example.com", "address": "it@example.com"}
    )
    domain = Domain.objects.get()
    assert added.url == f"/settings/domains/{domain.pk}/"
    page = text(client.get(added.url))
    assert "Prove that example.com is yours" in page
    assert "crmail mailed a six-digit code to <strong>it@example.com</strong>" in page
    assert domain.dkim_name not in page  # the records come after the code

    wrong = client.post(f"/settings/domains/{domain.pk}/confirm/", {"code": "123"})
    assert wrong.status_code == 422 and "That code is not right" in text(wrong)
    body = message_from_bytes(sink.wait_for(1)[0].data, policy=policy.default).get_content()
    code = re.search(r"\d{3} \d{3}", body).group(0)
    client.post(f"/settings/domains/{domain.pk}/confirm/", {"code": code})
    page = text(client.get(added.url))
    assert "Publish these records in the DNS of example.com" in page
    assert domain.dkim_name in page
    assert keys.record_value(domain.public_key) in page
    assert "Not checked yet" in page

    zone.add("example.com", "MX", "10 mx.example.com")
    fragment = text(client.post(f"/settings/domains/{domain.pk}/validate/", HTTP_HX_REQUEST="true"))
    assert fragment.startswith('<section class="card domain-step domain-status" id="domain-status"')
    assert (
        "Pending" in fragment and "No SPF record: publish a TXT record at example.com" in fragment
    )
    publish(zone, Domain.objects.get())
    after = client.post(f"/settings/domains/{domain.pk}/validate/")
    assert after.status_code == 302
    page = text(client.get(added.url))
    assert 'State: <span class="badge badge-active">Authenticated</span>' in page
    assert "mail crmail sends from addresses at example.com is signed" in page
    assert "Authenticated" in text(client.get("/settings/domains/"))


def test_removing_a_domain(client, org):
    domain = make_domain()
    client.force_login(org.admin)
    assert "Remove example.com and its DKIM key?" in text(
        client.get(f"/settings/domains/{domain.pk}/delete/")
    )
    done = client.post(f"/settings/domains/{domain.pk}/delete/", follow=True)
    assert "example.com is removed: mail from it is no longer signed." in text(done)
    assert not Domain.objects.exists()


def test_the_composer_warns_of_a_from_address_whose_mail_goes_unsigned(client, org):
    Mailbox.objects.create(
        owner=org.rep,
        email="rep@example.com",
        is_active=True,
        smtp_host="127.0.0.1",
        extra_from_addresses=["rep@sales.example", "rep.private@gmail.com"],
    )
    client.force_login(org.rep)
    compose = reverse("web:compose")
    assert "compose-warning" not in text(client.get(compose))  # no domain added: no warning
    make_domain("example.com", state=State.AUTHENTICATED)
    make_domain("sales.example", state=State.PENDING)
    page = text(client.get(compose))
    warnings = re.findall(r'<p class="alert alert-warning compose-warning"[^>]*>', page)
    assert len(warnings) == 1  # the pending domain; gmail.com is not the team's to authenticate
    assert 'data-sender-warning="rep@sales.example" hidden' in warnings[0]
    assert (
        "sales.example is not authenticated yet (pending): mail from rep@sales.example goes "
        "out without crmail's DKIM signature." in page
    )
    Domain.objects.filter(name="example.com").update(state=State.PENDING)
    page = text(client.get(compose))
    shown = re.search(r'data-sender-warning="rep@example.com"( hidden)?>', page)
    assert shown and not shown.group(1)  # the address chosen: shown without JavaScript
