"""``crmail dropbox`` run in-process: the address, a new one, the refusals, in words."""

from __future__ import annotations

import pytest

from crmail.config.cli import main
from crmail.dropbox import receive
from crmail.dropbox.models import Stage

pytestmark = pytest.mark.django_db


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def said(capsys, *argv: str) -> str:
    """All the command printed, on both streams, as one line."""
    _, out, err = run(capsys, *argv)
    return " ".join((out + err).split())


def test_the_address_is_printed_the_same_until_it_is_regenerated(capsys, settings, org):
    settings.CRMAIL_DROPBOX_DOMAIN = "dropbox.example.com"
    status, out, _ = run(capsys, "dropbox", "address", "rep@crmail.test")
    assert status == 0
    first = out.strip()
    assert first.startswith("u-") and first.endswith("@dropbox.example.com")
    assert run(capsys, "dropbox", "address", "REP@crmail.test")[1].strip() == first
    status, out, err = run(capsys, "dropbox", "address", "rep@crmail.test", "--regenerate")
    assert status == 0
    assert out.strip() not in ("", first)
    assert f"{first} is retired: mail to it is refused from now on." in err


def test_without_a_domain_the_command_says_what_to_set(capsys, settings, org):
    settings.CRMAIL_DROPBOX_DOMAIN = ""
    status, out, err = run(capsys, "dropbox", "address", "rep@crmail.test")
    assert (status, out) == (1, "")
    assert "CRMAIL_DROPBOX_DOMAIN is not set" in err


def test_an_unknown_user_is_named(capsys, settings):
    settings.CRMAIL_DROPBOX_DOMAIN = "dropbox.example.com"
    status, _, err = run(capsys, "dropbox", "address", "nobody@example.com")
    assert status == 1
    assert "no user with the email 'nobody@example.com'" in err


def test_refusals_are_listed_with_the_answer_given(capsys, org):
    assert "refused nothing" in run(capsys, "dropbox", "refusals")[1]
    receive.refuse(Stage.RCPT, "550 5.1.1 No such dropbox address", envelope_from="x@evil.test")
    status, out, _ = run(capsys, "dropbox", "refusals")
    assert status == 0
    words = " ".join(out.replace("│", " ").split())
    assert "x@evil.test" in words
    assert "550 5.1.1" in words and "dropbox" in words


def test_check_says_where_the_dropbox_receives_and_whether_its_certificate_works(
    capsys, settings, tmp_path
):
    settings.CRMAIL_DROPBOX_DOMAIN = "dropbox.example.com"
    settings.CRMAIL_DROPBOX_PORT = 2525
    settings.CRMAIL_DROPBOX_HOST = "0.0.0.0"
    out = said(capsys, "check")
    assert "BCC Dropbox addresses are at dropbox.example.com" in out
    assert "receives it on 0.0.0.0:2525" in out
    assert "offers no STARTTLS" in out
    settings.CRMAIL_DROPBOX_TLS_CERT = str(tmp_path / "missing.pem")
    settings.CRMAIL_DROPBOX_TLS_KEY = str(tmp_path / "missing.key")
    out = said(capsys, "check")
    assert "The dropbox's certificate or key cannot be used" in out
