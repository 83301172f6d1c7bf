"""The dropbox's sender check (decision 052, SPEC F10): mail From an authenticated domain
must pass SPF for the connecting address or carry a DKIM signature of the domain that
verifies, checked against a local DNS server; anything else is refused in words and
listed for administrators. Mail from other domains is not checked."""

from __future__ import annotations

import smtplib

import pytest

from crmail.domains import dns, signing
from crmail.domains.models import State
from crmail.domains.tests.conftest import make_domain, publish
from crmail.dropbox.models import Delivery, Refusal
from crmail.dropbox.tests.test_receiver import dropbox_of, mail, running, send
from crmail.mailboxes.models import Mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def zone(dns_server, settings):
    settings.CRMAIL_DNS_SERVERS = (("127.0.0.1", dns_server.port),)
    settings.CRMAIL_SPF_INCLUDE = ""
    return dns_server


@pytest.fixture
def receiver(settings):
    with running(settings) as started:
        yield started


@pytest.fixture
def rep(receiver):
    user = f.user("rep@crmail.test", name="Rex Rep")
    Mailbox.objects.create(owner=user, email="rex@work.test", is_active=True)
    return user


@pytest.fixture
def work(zone):
    """work.test is authenticated; its SPF record lets only 192.0.2.1 send."""
    domain = make_domain("work.test", state=State.AUTHENTICATED)
    publish(zone, domain, spf="v=spf1 ip4:192.0.2.1 -all")
    return domain


def refused(receiver, rep, raw: bytes, envelope_from: str = "rex@work.test") -> str:
    with pytest.raises(smtplib.SMTPDataError) as error:
        send(receiver, dropbox_of(rep), raw, envelope_from)
    return f"{error.value.smtp_code} {error.value.smtp_error.decode()}"


def test_spf_passing_for_the_connecting_address_is_enough(receiver, rep, work, zone):
    zone.remove("work.test", "TXT")
    zone.add("work.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    send(receiver, dropbox_of(rep), mail(sender="rex@work.test"), "rex@work.test")
    assert Delivery.objects.count() == 1
    assert ("work.test", "TXT") in zone.queries


def test_failing_spf_and_no_signature_is_refused_in_words(receiver, rep, work):
    reply = refused(receiver, rep, mail(sender="rex@work.test"))
    assert reply.startswith(
        "550 5.7.26 The sender's domain is authenticated in crmail, and this message passes "
        "neither its SPF nor its DKIM check: SPF gives fail for 127.0.0.1 sending as work.test, "
        "and it has no DKIM signature of work.test"
    )
    assert not Delivery.objects.exists()
    refusal = Refusal.objects.get()
    assert refusal.reply.startswith("550 5.7.26")
    assert (refusal.header_from, refusal.user) == ("rex@work.test", rep)


def test_a_dkim_signature_of_the_domain_that_verifies_is_enough(receiver, rep, work):
    signed = signing.sign_with(work, mail(sender="rex@work.test"))
    send(receiver, dropbox_of(rep), signed, "rex@work.test")
    assert Delivery.objects.count() == 1
    assert not Refusal.objects.exists()


def test_a_signature_that_does_not_verify_is_refused(receiver, rep, work):
    signed = signing.sign_with(work, mail(sender="rex@work.test", body="Our price: 100."))
    reply = refused(receiver, rep, signed.replace(b"100.", b"10."))
    assert reply.endswith("and its DKIM signature of work.test does not verify")


def test_spf_passing_for_another_domain_does_not_count(receiver, rep, work, zone):
    zone.add("crmail.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")  # the sign-in address's
    reply = refused(receiver, rep, mail(sender="rex@work.test"), envelope_from="rep@crmail.test")
    assert "SPF passes for crmail.test, which is not work.test" in reply


def test_dns_not_answering_asks_the_sender_to_try_again(receiver, rep, work, zone, monkeypatch):
    monkeypatch.setattr(dns, "LIFETIME", 1.0)
    zone.silence("work.test")
    reply = refused(receiver, rep, mail(sender="rex@work.test"))
    assert reply.startswith(
        "451 4.7.24 The sender's domain could not be checked now (DNS did not answer): try "
        "again later."
    )
    assert Refusal.objects.get().reply.startswith("451 4.7.24")


def test_mail_from_a_domain_not_authenticated_is_not_checked(receiver, rep, zone):
    make_domain("work.test", state=State.PENDING)
    send(receiver, dropbox_of(rep), mail(sender="rex@work.test"), "rex@work.test")
    send(receiver, dropbox_of(rep), mail(subject="Another"), "rep@crmail.test")
    assert Delivery.objects.count() == 2
    assert zone.queries == []
