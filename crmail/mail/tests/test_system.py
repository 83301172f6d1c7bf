"""crmail's own mail through CRMAIL_SMTP_URL, against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from crmail.config.env import ConfigError
from crmail.mail import system
from tests.harness.dovecot import free_port

pytestmark = pytest.mark.database_independent  # no database: one pass runs it


@pytest.fixture(autouse=True)
def _from_address(settings):
    settings.CRMAIL_MAIL_FROM = "crmail@crm.example.com"


def test_a_message_goes_out_over_starttls_with_a_login(settings, smtp_sink_factory):
    sink = smtp_sink_factory(
        username="crmail",
        password="s3cret",
        auth_required=True,
        tls="starttls",
        require_starttls=True,
    )
    settings.CRMAIL_SMTP_URL = f"smtp://crmail:s3cret@{sink.host}:{sink.port}?ca={sink.cert_path}"
    settings.CRMAIL_MAIL_FROM = "no-reply@crm.example.com"

    system.send("admin@example.com", "Your code: 481 220", "Enter 481 220 in crmail.")

    (got,) = sink.wait_for(1)
    assert got.tls and got.auth_user == "crmail"
    assert got.mail_from == "no-reply@crm.example.com"
    assert got.rcpt_tos == ["admin@example.com"]
    parsed = message_from_bytes(got.data, policy=policy.default)
    assert parsed["Subject"] == "Your code: 481 220"
    assert parsed["From"] == "crmail <no-reply@crm.example.com>"
    assert parsed["Message-ID"]
    assert "Enter 481 220 in crmail." in parsed.get_content()


def test_without_a_server_crmail_says_what_to_set(settings):
    settings.CRMAIL_SMTP_URL = ""
    with pytest.raises(system.SystemMailError, match="an administrator sets CRMAIL_SMTP_URL"):
        system.send("admin@example.com", "Code", "123")


def test_the_from_address_comes_from_the_login_or_the_server_or_is_asked_for(settings, smtp_sink):
    settings.CRMAIL_MAIL_FROM = ""
    settings.CRMAIL_SMTP_URL = "smtp://crm%40example.org:pw@smtp.mail.example.org"
    assert system.sender_address() == "crm@example.org"
    settings.CRMAIL_SMTP_URL = "smtp://relay:pw@smtp.mail.example.org"
    assert system.sender_address() == "crmail@example.org"
    settings.CRMAIL_SMTP_URL = f"smtp://{smtp_sink.host}:{smtp_sink.port}?tls=none"
    with pytest.raises(system.SystemMailError, match="sets CRMAIL_MAIL_FROM"):
        system.send("admin@example.com", "Code", "123")
    assert not smtp_sink.messages


def test_a_refused_login_is_said_without_the_password(settings, smtp_sink_factory):
    sink = smtp_sink_factory(username="crmail", password="right", auth_required=True)
    settings.CRMAIL_SMTP_URL = f"smtp://crmail:wrong-pw@{sink.host}:{sink.port}?tls=none"
    with pytest.raises(system.SystemMailError) as caught:
        system.send("admin@example.com", "Code", "123")
    assert "refused crmail's login" in str(caught.value)
    assert "wrong-pw" not in str(caught.value)
    assert not sink.messages


def test_a_server_that_refuses_the_data_is_quoted(settings, smtp_sink):
    smtp_sink.data_response = "554 5.7.1 Message rejected as spam"
    settings.CRMAIL_SMTP_URL = f"smtp://{smtp_sink.host}:{smtp_sink.port}?tls=none"
    with pytest.raises(system.SystemMailError, match=r"554 5\.7\.1 Message rejected as spam"):
        system.send("admin@example.com", "Code", "123")


def test_a_server_that_is_not_there_is_said(settings):
    settings.CRMAIL_SMTP_URL = f"smtp://127.0.0.1:{free_port()}?tls=none"
    with pytest.raises(system.SystemMailError, match="could not reach its mail server"):
        system.send("admin@example.com", "Code", "123")


@pytest.mark.parametrize(
    ("to", "subject"),
    [("admin@example.com", "Code\r\nBcc: victim@example.com"), ("a@b.c\r\nX: y", "Code")],
)
def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(
    settings, smtp_sink, to, subject
):
    settings.CRMAIL_SMTP_URL = f"smtp://{smtp_sink.host}:{smtp_sink.port}?tls=none"
    with pytest.raises(system.SystemMailError):
        system.send(to, subject, "123")
    assert not smtp_sink.messages


def test_the_url_is_read_or_refused_in_words_without_its_password():
    assert system.relay("smtps://u:p@mail.example.com") == system.Relay(
        host="mail.example.com", port=465, user="u", password="p", tls="implicit"
    )
    assert system.relay("smtp://relay.internal?tls=none").port == 587
    with pytest.raises(ConfigError) as caught:
        system.relay("https://u:topsecret@mail.example.com")
    assert "smtp://" in str(caught.value) and "topsecret" not in str(caught.value)
    with pytest.raises(ConfigError, match="tls= may be starttls or none"):
        system.relay("smtp://mail.example.com?tls=maybe")
    assert "secretpw" not in repr(system.relay("smtp://u:secretpw@h.example.com"))
