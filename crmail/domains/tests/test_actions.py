"""The wizard's steps as actions: a domain added, proven with the mailed code, validated
against the test DNS server, re-checked for 48 hours, its administrator told by mail."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.db import connection
from django.utils import timezone

from crmail.config import crypto
from crmail.domains import actions, keys, queries, tasks
from crmail.domains.models import Domain, State
from crmail.domains.tests.conftest import INCLUDE, make_domain, publish
from crmail.mail.models import VerificationCode
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(own_mail_sink):  # crmail's own mail, to a real SMTP sink
    return own_mail_sink


def _body(message) -> str:
    return message_from_bytes(message.data, policy=policy.default).get_body().get_content()


def _subject(message) -> str:
    return str(message_from_bytes(message.data, policy=policy.default)["Subject"])


def _code(sink) -> str:
    return re.search(r"(\d{3}) (\d{3})", _body(sink.wait_for(1)[-1])).group(0)


def test_an_admin_authenticates_a_domain_end_to_end(org, zone, sink):
    domain = actions.add("Example.COM", by=org.admin, code_to="postmaster@example.com")
    assert domain.name == "example.com"
    assert domain.state == State.UNVERIFIED
    assert sink.messages[0].rcpt_tos == ["postmaster@example.com"]
    assert "the domain example.com" in _body(sink.messages[0])
    with pytest.raises(actions.Invalid, match=r"Prove that example\.com is yours first"):
        actions.validate(domain, by=org.admin)

    actions.confirm(domain, _code(sink), by=org.admin)
    domain.refresh_from_db()
    assert domain.state == State.PENDING
    assert domain.next_check_at is not None
    spf, dkim = queries.records(domain)
    assert (spf.name, spf.value) == ("example.com", f"v=spf1 include:{INCLUDE} ~all")
    assert dkim.name == f"{domain.selector}._domainkey.example.com"
    assert dkim.value == keys.record_value(domain.public_key)

    report = actions.validate(domain, by=org.admin)
    assert not report.authenticated
    assert domain.state == State.PENDING
    assert Domain.objects.get().problems == report.problems

    zone.add(spf.name, "TXT", spf.value)
    zone.add(dkim.name, "TXT", dkim.value)
    assert actions.validate(domain, by=org.admin).authenticated
    domain.refresh_from_db()
    assert domain.state == State.AUTHENTICATED
    assert domain.authenticated_at is not None
    assert domain.next_check_at is None
    assert queries.is_authenticated("example.com")


def test_the_private_key_is_encrypted_at_rest(db):
    domain = make_domain()
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key FROM domains_domain WHERE id = %s", [domain.pk])
        (stored,) = cursor.fetchone()
    assert "PRIVATE KEY" not in stored
    assert Domain.objects.get().private_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert len(keys.record_value(domain.public_key)) > 390  # 2048 bits
    labels = {column.label for column in crypto.encrypted_columns()}
    assert "domains.Domain.private_key" in labels  # crmail keys rotate covers it


def test_each_domain_gets_its_own_key_and_selector(org, zone, sink):
    one = actions.add("one.example", by=None)
    two = actions.add("two.example", by=None)
    assert one.public_key != two.public_key
    assert one.selector != two.selector
    assert re.fullmatch(r"crmail\d{6}-[a-z0-9]{4}", one.selector)


@pytest.mark.parametrize(
    ("name", "address", "field", "words"),
    [
        (
            "example.com",
            "postmaster@example.org",
            "address",
            "must go to an address at example.com",
        ),
        ("example.com", "sub.example.com@", "address", "is not an email address"),
        ("example.com", "", "address", "Enter an address at example.com"),
        ("not a domain", "a@b.com", "domain", "is not a domain name"),
        ("user@example.com", "a@example.com", "domain", "write it alone"),
    ],
)
def test_refusals_name_the_field_in_words(org, sink, name, address, field, words):
    with pytest.raises(actions.Invalid, match=words) as refused:
        actions.add(name, by=org.admin, code_to=address)
    assert refused.value.field == field
    assert not Domain.objects.exists()


def test_a_domain_is_added_once_and_only_by_admins(org, sink):
    actions.add("example.com", by=org.admin, code_to="it@example.com")
    with pytest.raises(actions.Invalid, match=r"example\.com is already added"):
        actions.add("EXAMPLE.com.", by=org.admin, code_to="it@example.com")
    with pytest.raises(actions.NotAllowed, match="Only administrators"):
        actions.add("example.org", by=org.rep, code_to="it@example.org")


def test_a_code_that_cannot_be_mailed_adds_nothing(org, settings):
    settings.CRMAIL_SMTP_URL = ""
    with pytest.raises(actions.Invalid, match="CRMAIL_SMTP_URL") as refused:
        actions.add("example.com", by=org.admin, code_to="it@example.com")
    assert refused.value.field == "address"
    assert not Domain.objects.exists()


def test_a_wrong_code_is_refused_in_words_and_a_new_one_can_be_sent(org, sink, settings):
    domain = actions.add("example.com", by=org.admin, code_to="it@example.com")
    code = _code(sink)
    wrong = "000000" if code != "000 000" else "111111"
    with pytest.raises(actions.Invalid, match=r"not right \(4 tries left\)"):
        actions.confirm(domain, wrong, by=org.admin)
    VerificationCode.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    actions.resend_code(domain, by=org.admin, code_to="boss@example.com")
    assert sink.wait_for(2)[1].rcpt_tos == ["boss@example.com"]
    with pytest.raises(actions.Invalid, match="not right"):
        actions.confirm(domain, code, by=org.admin)  # the first code is replaced
    actions.confirm(domain, _code(sink), by=org.admin)
    assert domain.state == State.PENDING


def test_the_command_needs_no_code(org, zone):
    domain = actions.add("example.com", by=None)
    assert domain.state == State.PENDING
    assert domain.code_address == ""


def test_dns_not_answering_leaves_an_authenticated_domain_authenticated(zone, monkeypatch):
    from crmail.domains import dns

    monkeypatch.setattr(dns, "LIFETIME", 1.0)
    domain = make_domain()
    publish(zone, domain)
    assert actions.validate(domain, by=None).authenticated
    zone.silence("example.com")
    report = actions.validate(domain, by=None)
    assert report.inconclusive
    assert domain.state == State.AUTHENTICATED
    zone.clear()
    assert not actions.validate(domain, by=None).authenticated
    assert Domain.objects.get().state == State.PENDING


def test_pending_domains_are_rechecked_and_the_admin_told(org, zone, sink):
    domain = make_domain(added_by=org.admin)
    actions.validate(domain, by=org.admin)  # a person looked: watched for 48 hours
    Domain.objects.update(next_check_at=timezone.now() - timedelta(seconds=1))
    tasks.recheck_due()  # jobs run at once in tests (memory queue)
    domain.refresh_from_db()
    assert domain.state == State.PENDING
    assert domain.next_check_at > timezone.now()
    assert sink.messages == []  # nothing to tell yet

    publish(zone, domain)
    tasks.recheck_due()  # not due yet: nothing asked
    assert Domain.objects.get().state == State.PENDING
    Domain.objects.update(next_check_at=timezone.now() - timedelta(seconds=1))
    tasks.recheck_due()
    assert Domain.objects.get().state == State.AUTHENTICATED
    told = sink.wait_for(1)[0]
    assert told.rcpt_tos == [org.admin.email]
    assert _subject(told) == "crmail: example.com is authenticated"
    assert "mail crmail sends from addresses at example.com is signed" in _body(told)


def test_after_48_hours_pending_the_admin_is_told_what_is_wrong(org, zone, sink):
    domain = make_domain(added_by=org.admin)
    publish(zone, domain, dkim=False)
    Domain.objects.update(
        next_check_at=timezone.now() - timedelta(seconds=1),
        recheck_until=timezone.now() + timedelta(minutes=5),
    )
    tasks.recheck_due()
    domain.refresh_from_db()
    assert domain.state == State.PENDING
    assert domain.next_check_at is None  # the 48 hours are over: no more re-checks
    body = _body(sink.wait_for(1)[0])
    assert _subject(sink.messages[0]) == "crmail: example.com is still pending"
    assert "records of example.com for 48 hours and they are still not as they should" in body
    assert f"No DKIM key at {domain.dkim_name}" in body
    tasks.recheck_due()
    assert len(sink.messages) == 1


def test_a_domain_added_on_the_server_tells_every_admin(org, zone, sink):
    second = f.user("admin2@crmail.test", admin=True)
    domain = actions.add("example.com", by=None)
    publish(zone, domain)
    Domain.objects.update(next_check_at=timezone.now() - timedelta(seconds=1))
    tasks.recheck_due()
    told = sorted(m.rcpt_tos[0] for m in sink.wait_for(2))
    assert told == sorted([org.admin.email, second.email])


def test_deleting_removes_the_domain_and_its_waiting_code(org, sink):
    domain = actions.add("example.com", by=org.admin, code_to="it@example.com")
    actions.delete(domain, by=org.admin)
    assert not Domain.objects.exists()
    assert not VerificationCode.objects.exists()


def test_the_composer_warning_in_words(db):
    assert queries.unsigned_reason("rep@example.com") == ""  # no domain added: no warning
    make_domain("example.com", state=State.AUTHENTICATED)
    make_domain("pending.example", state=State.PENDING)
    assert queries.unsigned_reason("rep@example.com") == ""
    assert queries.unsigned_reason("rep@pending.example") == (
        "pending.example is not authenticated yet (pending): mail from rep@pending.example "
        "goes out without crmail's DKIM signature."
    )
    assert queries.unsigned_reason("rep@other.example").startswith(
        "other.example is not an authenticated domain"
    )
