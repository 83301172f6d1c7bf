"""``crmail backup EMAIL [-o FILE]``: a user's mail as an mbox file, or on standard output."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from crmail.config.cli import main
from crmail.web.tests.mail_samples import deliver, text_message
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def leaver():  # type: ignore[no-untyped-def]
    user = f.user("leaver@crmail.test", is_active=False)
    deliver(user, text_message("one\nFrom me\n", subject="One"))
    deliver(user, text_message("two", subject="Two"))
    return user


def test_writes_the_mbox_to_a_file_with_a_note_on_stderr(leaver, capsys, tmp_path: Path):
    path = tmp_path / "leaver.mbox"
    status = main(["backup", "Leaver@crmail.test", "-o", str(path)])
    out, err = capsys.readouterr()
    assert status == 0 and out == ""
    assert "Backed up 2 messages of leaver@crmail.test" in err and str(path) in err
    box = mailbox.mbox(path, create=False)
    assert sorted(box[key]["Subject"] for key in box.iterkeys()) == ["One", "Two"]
    assert b"\n>From me\n" in path.read_bytes()
    assert not (tmp_path / "leaver.mbox.part").exists()
    assert path.stat().st_mode & 0o777 == 0o600  # someone's mail: for the owner alone


def test_writes_to_standard_output_without_o(leaver, capsysbinary):
    assert main(["backup", "leaver@crmail.test"]) == 0
    out, err = capsysbinary.readouterr()
    assert out.startswith(b"From ada@vendor.example ") and out.count(b"\n\nFrom ") == 1
    assert b"Backed up 2 messages" in err


def test_an_unknown_user_is_an_error_in_words(capsys, tmp_path: Path):
    path = tmp_path / "nobody.mbox"
    assert main(["backup", "nobody@crmail.test", "-o", str(path)]) == 1
    _, err = capsys.readouterr()
    assert "EMAIL: there is no user with the email 'nobody@crmail.test'." in err
    assert "crmail user list" in err and "Traceback" not in err
    assert not path.exists()


def test_the_help_describes_the_command(capsys):
    assert main(["backup", "--help"]) == 0
    out, _ = capsys.readouterr()
    assert "mbox" in out and "-o FILE" in out
