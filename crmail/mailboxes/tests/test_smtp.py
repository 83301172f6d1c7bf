"""Sending through a real SMTP server (aiosmtpd): TLS, AUTH, refusals in words."""

from __future__ import annotations

import pytest

from crmail.mail.compose import ComposeError, Draft, build_message
from crmail.mail.parse import parse_message
from crmail.mailboxes.drivers.base import AuthFailed, ConnectFailed, DriverError
from crmail.mailboxes.drivers.smtp import SmtpClient, SmtpConfig
from tests.harness.dovecot import free_port

pytestmark = pytest.mark.database_independent  # no database: one pass runs it


def draft(**kw) -> Draft:
    base = {
        "sender": "rep@crmail.test",
        "sender_name": "Rex Rep",
        "to": ["Client@Example.com"],
        "subject": "Offer",
        "text": "Hello",
    }
    return Draft(**{**base, **kw})


def test_a_message_reaches_the_server_with_its_headers(smtp_sink):
    msg, rcpts = build_message(draft(cc=["cc@example.com"], bcc=["hidden@example.com"]))
    with SmtpClient(SmtpConfig("127.0.0.1", smtp_sink.port, "none")) as client:
        client.send("rep@crmail.test", rcpts, msg.as_bytes())
    [got] = smtp_sink.wait_for(1, 5)
    assert sorted(got.rcpt_tos) == ["cc@example.com", "client@example.com", "hidden@example.com"]
    parsed = parse_message(got.data)
    assert parsed.subject == "Offer" and parsed.addresses("from") == ["rep@crmail.test"]
    assert "hidden@example.com" not in got.data.decode()  # Bcc is not in the headers
    assert parsed.message_id.endswith("@crmail.test")


def test_starttls_and_password(smtp_sink_factory):
    sink = smtp_sink_factory(tls="starttls", username="rex", password="pw", auth_required=True)
    msg, rcpts = build_message(draft())
    cfg = SmtpConfig(
        "localhost", sink.port, "starttls", login="rex", password="pw", cafile=str(sink.cert_path)
    )
    with SmtpClient(cfg) as client:
        client.send("rep@crmail.test", rcpts, msg.as_bytes())
    [got] = sink.wait_for(1, 5)
    assert got.auth_user == "rex" and got.tls


def test_implicit_tls_rejects_an_untrusted_certificate_unless_allowed(smtp_sink_factory):
    sink = smtp_sink_factory(tls="implicit")
    with pytest.raises(ConnectFailed) as err:
        SmtpClient(SmtpConfig("localhost", sink.port, "tls")).connect()
    assert err.value.kind == "tls" and "self-signed" in str(err.value)
    client = SmtpClient(SmtpConfig("localhost", sink.port, "tls", allow_self_signed=True))
    client.connect()
    client.close()


def test_wrong_password_is_said_in_words_without_the_password(smtp_sink_factory):
    sink = smtp_sink_factory(username="rex", password="right", auth_required=True)
    cfg = SmtpConfig("127.0.0.1", sink.port, "none", login="rex", password="wrong-secret")
    with pytest.raises(AuthFailed) as err:
        SmtpClient(cfg).connect()
    assert "refused the login name or password" in str(err.value)
    assert "wrong-secret" not in str(err.value) and "wrong-secret" not in repr(cfg)


def test_refused_port_and_rejected_data_are_explained(smtp_sink):
    with pytest.raises(ConnectFailed) as err:
        SmtpClient(SmtpConfig("127.0.0.1", free_port(), "none", timeout=3)).connect()
    assert err.value.kind == "refused"
    for security in ("tls", "none"):  # a name DNS cannot spell
        with pytest.raises(ConnectFailed) as err:
            SmtpClient(SmtpConfig("smtp\x9d.example", 465, security, timeout=3)).connect()
        assert err.value.kind == "unreachable" and "could not be found" in str(err.value)
    smtp_sink.data_response = "554 5.7.1 Message rejected as spam"
    msg, rcpts = build_message(draft())
    with (
        pytest.raises(DriverError) as err,
        SmtpClient(SmtpConfig("127.0.0.1", smtp_sink.port, "none")) as client,
    ):
        client.send("rep@crmail.test", rcpts, msg.as_bytes())
    assert err.value.kind == "rejected" and "spam" in str(err.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject"),
        ({"sender_name": "Rex\nX-Evil: 1"}, "from"),
        ({"to": ["a@example.com\r\nBcc: b@example.com"]}, "to"),
        ({"to": ["not an address"]}, "to"),
        ({"to": [], "cc": [], "bcc": []}, "to"),
    ],
)
def test_headers_with_line_breaks_or_bad_addresses_are_refused(change, field):
    with pytest.raises(ComposeError) as err:
        build_message(draft(**change))
    assert err.value.field == field
