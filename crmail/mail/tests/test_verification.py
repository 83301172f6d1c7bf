"""Verification codes mailed through crmail's own mail and typed back (SPEC F10, F16)."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.utils import timezone

from crmail.mail import verification
from crmail.mail.models import VerificationCode

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(own_mail_sink):  # crmail's own mail, to a real SMTP sink
    return own_mail_sink


def _mailed_code(sink, count=1) -> str:
    got = sink.wait_for(count)[count - 1]
    body = message_from_bytes(got.data, policy=policy.default).get_content()
    assert "the domain example.com" in body
    return re.search(r"(\d{3}) (\d{3})", body).group(0)


def test_the_mailed_code_is_accepted_once_and_only_its_hash_is_kept(sink):
    verification.send_code(
        "domain", "example.com", "admin@example.com", what="the domain example.com"
    )
    code = _mailed_code(sink)
    assert sink.messages[0].rcpt_tos == ["admin@example.com"]
    row = VerificationCode.objects.get()
    assert code.replace(" ", "") not in row.code_hash

    assert verification.waiting("domain", "example.com") == row
    verification.confirm("domain", "example.com", f" {code.replace(' ', '-')} ")
    assert verification.waiting("domain", "example.com") is None
    with pytest.raises(verification.VerificationError, match="No code is waiting"):
        verification.confirm("domain", "example.com", code)


def test_wrong_codes_are_counted_and_use_the_code_up(sink):
    verification.send_code(
        "domain", "example.com", "admin@example.com", what="the domain example.com"
    )
    code = _mailed_code(sink)
    wrong = "000000" if code != "000 000" else "111111"
    for left in (4, 3, 2, 1):
        with pytest.raises(verification.VerificationError, match=rf"\({left} tr"):
            verification.confirm("domain", "example.com", wrong)
    with pytest.raises(verification.VerificationError, match="no tries are left"):
        verification.confirm("domain", "example.com", wrong)
    with pytest.raises(verification.VerificationError, match="Too many wrong codes"):
        verification.confirm("domain", "example.com", code)


def test_a_code_for_one_key_does_not_prove_another(sink):
    verification.send_code(
        "domain", "example.com", "admin@example.com", what="the domain example.com"
    )
    code = _mailed_code(sink)
    verification.send_code(
        "domain", "example.org", "admin@example.org", what="the domain example.com"
    )
    with pytest.raises(verification.VerificationError, match="not right"):
        verification.confirm("domain", "example.org", code)
    with pytest.raises(verification.VerificationError, match="No code is waiting"):
        verification.confirm("org-address", "example.com", code)


def test_an_expired_code_is_refused_and_a_new_one_replaces_it(sink):
    verification.send_code(
        "domain", "example.com", "admin@example.com", what="the domain example.com"
    )
    first = _mailed_code(sink)
    with pytest.raises(verification.VerificationError, match="wait"):
        verification.send_code("domain", "example.com", "admin@example.com", what="x")
    VerificationCode.objects.update(
        created_at=timezone.now() - timedelta(days=2), expires_at=timezone.now() - timedelta(days=1)
    )
    with pytest.raises(verification.VerificationError, match="expired"):
        verification.confirm("domain", "example.com", first)
    verification.send_code(
        "domain", "example.com", "admin@example.com", what="the domain example.com"
    )
    second = _mailed_code(sink, 2)
    assert VerificationCode.objects.count() == 1
    if first != second:
        with pytest.raises(verification.VerificationError, match="not right"):
            verification.confirm("domain", "example.com", first)
    verification.confirm("domain", "example.com", second)


def test_a_code_that_cannot_be_mailed_leaves_nothing_waiting(settings, smtp_sink):
    settings.CRMAIL_SMTP_URL = ""
    with pytest.raises(
        verification.VerificationError, match=r"could not be mailed.*CRMAIL_SMTP_URL"
    ):
        verification.send_code("domain", "example.com", "admin@example.com", what="x")
    assert not VerificationCode.objects.exists()
