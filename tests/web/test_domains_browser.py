"""Email authentication in a real browser, against a local DNS server: an administrator
adds a domain, enters the mailed code, copies the records to publish, validates (Pending
with the problem in words, then Authenticated), and mail sent from an address at the
domain carries a DKIM signature that verifies; the composer warns of an address whose
domain is not authenticated."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest
from playwright.sync_api import expect

from crmail.domains import inbound
from crmail.mailboxes.models import Mailbox
from tests import factories as f

pytestmark = pytest.mark.browser

INCLUDE = "_spf.crm.example.net"


def test_an_admin_authenticates_a_domain_and_its_mail_is_signed(
    app, settings, dns_server, smtp_sink
):
    settings.CRMAIL_DNS_SERVERS = (("127.0.0.1", dns_server.port),)
    settings.CRMAIL_SPF_INCLUDE = INCLUDE
    settings.CRMAIL_SMTP_URL = f"smtp://{smtp_sink.host}:{smtp_sink.port}?tls=none"
    settings.CRMAIL_MAIL_FROM = "crmail@crm.example.net"
    dns_server.add(INCLUDE, "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    admin = f.user("ada@example.com", name="Ada Admin", role_name="CEO", admin=True)
    Mailbox.objects.create(
        owner=admin,
        email="ada@example.com",
        is_active=True,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_security="none",
        smtp_same_credentials=False,
        store_sent_on_server=False,
        extra_from_addresses=["ada@example.org"],
    )
    page = app.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    app.sign_in("ada@example.com", f.PASSWORD)
    menu = app.admin_menu()
    app.shot("domains-admin-menu")
    menu.get_by_role("link", name="Email authentication").click()
    expect(page.get_by_role("heading", name="Email authentication")).to_be_visible()
    expect(page.get_by_text("No domain is added yet")).to_be_visible()

    page.get_by_label("Domain").fill("example.com")
    page.get_by_label("Send the code to").fill("postmaster@example.org")
    page.get_by_role("button", name="Add and mail the code").click()
    expect(page.locator(".field.has-error")).to_contain_text(
        "The code must go to an address at example.com"
    )
    app.shot("domains-refused-address")
    page.get_by_label("Send the code to").fill("postmaster@example.com")
    page.get_by_role("button", name="Add and mail the code").click()
    expect(page.get_by_role("heading", name="Prove that example.com is yours")).to_be_visible()
    app.shot("domains-code")

    page.get_by_label("Code", exact=True).fill("000 000x")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".field.has-error")).to_contain_text("That code is not right")
    body = message_from_bytes(smtp_sink.wait_for(1)[0].data, policy=policy.default)
    code = re.search(r"\d{3} \d{3}", body.get_content()).group(0)
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Publish these records in the DNS of example.com")).to_be_visible()

    records = page.locator(".dns-record")
    expect(records).to_have_count(2)
    spf_name, spf_value = records.nth(0).locator("code.dns-value").all_inner_texts()
    dkim_name, dkim_value = records.nth(1).locator("code.dns-value").all_inner_texts()
    assert (spf_name, spf_value) == ("example.com", f"v=spf1 include:{INCLUDE} ~all")
    assert re.fullmatch(r"crmail\d{6}-[a-z0-9]{4}\._domainkey\.example\.com", dkim_name)
    assert dkim_value.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # 2048-bit RSA
    records.nth(1).get_by_role("button", name="Copy").nth(1).click()
    expect(records.nth(1).get_by_role("status").nth(1)).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == dkim_value
    app.shot("domains-records")

    dns_server.add("example.com", "TXT", spf_value)  # the SPF record first, no DKIM yet
    page.get_by_role("button", name="Validate").click()
    app.settled()
    status = page.locator("#domain-status")
    expect(status).to_contain_text("State: Pending")
    expect(status).to_contain_text(f"No DKIM key at {dkim_name}")
    expect(status).to_contain_text(f"One SPF record, including {INCLUDE}")
    expect(status).to_contain_text("No DMARC record at _dmarc.example.com")
    app.shot("domains-pending")

    dns_server.add(dkim_name, "TXT", dkim_value)
    dns_server.add("_dmarc.example.com", "TXT", "v=DMARC1; p=quarantine; adkim=s")
    page.get_by_role("button", name="Validate").click()
    app.settled()
    expect(status).to_contain_text("State: Authenticated")
    expect(status).to_contain_text("DMARC policy quarantine")
    expect(status).to_contain_text("crmail signs as d=example.com, which aligns")
    app.shot("domains-authenticated")
    app.go("/settings/domains/")
    expect(page.locator("table.domains tbody tr")).to_contain_text("Authenticated")
    app.shot("domains-list")

    # Mail sent from the domain is signed; the other address's domain is warned of.
    app.go("/compose/")
    warning = page.locator(".compose-warning")
    expect(warning).to_be_hidden()
    page.get_by_label("From").select_option("ada@example.org")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("example.org is not an authenticated domain")
    app.shot("compose-unsigned-warning")
    page.get_by_label("From").select_option("ada@example.com")
    expect(warning).to_be_hidden()
    page.get_by_label("To", exact=True).fill("grace@customer.example")
    page.get_by_label("Subject").fill("Our offer")
    page.locator("[contenteditable], textarea[name=body]").first.fill("Here it is.")
    page.get_by_role("button", name="Send", exact=True).last.click()
    expect(page.get_by_text("Your email “Our offer” was sent.")).to_be_visible()
    sent = smtp_sink.wait_for(2)[1]
    assert sent.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert inbound.dkim_result(sent.data, "example.com")[0]
    assert not inbound.dkim_result(sent.data.replace(b"Our offer", b"Our bill"), "example.com")[0]
