"""Bytes that are not UTF-8 in the ``crmail`` command's arguments (or in a password taken
from the environment) end in one line naming the argument and a non-zero exit, never a
traceback and never a half-written row.

Python hands such bytes to the program as lone surrogates (``$'Bad\\xffName'`` arrives as
``"Bad\\udcffName"``); that is what the in-process tests pass.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from crmail.config.cli import main
from crmail.people.models import ApiToken, Role, User
from tests.operator import crmail_script

BAD = "Bad\udcffName"  # what $'Bad\xffName' becomes in sys.argv


MAILBOX_ADD = (
    "mailbox", "add", "--user", "admin@crmail.test", "--protocol", "imap", "--host", BAD,
    "--port", "993", "--security", "tls", "--login", "x", "--password-env", "NOPE",
)  # fmt: skip


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_refused(status: int, out: str, err: str, argument: str) -> None:
    assert status == 2
    assert out == ""
    assert err.strip() == f"Error: {argument} is not valid UTF-8 text."
    assert "Traceback" not in err


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("argv", "argument"),
    [
        (("user", "add", "new@example.com", "--name", BAD), "--name"),
        (("user", "add", f"{BAD}@example.com", "--name", "Ok"), "EMAIL"),
        (("user", "add", "new@example.com", "--name", "Ok", "--role", BAD), "--role"),
        (("role", "add", BAD, "--parent", "CEO"), "NAME"),
        (("role", "add", "Fine", "--parent", BAD), "--parent"),
        (("token", "create", "admin@crmail.test", "--name", BAD), "--name"),
        (("import", "contacts", "people.csv", "--owner", BAD), "--owner"),
        (("sharing", "set", BAD, "public"), "EMAIL"),
        (("backup", BAD), "EMAIL"),
        (("mailbox", "list", "--user", BAD), "--user"),
        (MAILBOX_ADD, "--host"),
    ],
)
def test_an_argument_that_is_not_utf8_is_named_in_one_line(capsys, org, argv, argument):
    users, roles, tokens = User.objects.count(), Role.objects.count(), ApiToken.objects.count()
    assert_refused(*run(capsys, *argv), argument)
    assert (User.objects.count(), Role.objects.count(), ApiToken.objects.count()) == (
        users,
        roles,
        tokens,
    )


@pytest.mark.django_db
def test_a_password_from_the_environment_that_is_not_utf8_is_refused(capsys, monkeypatch):
    monkeypatch.setenv("NEW_PASSWORD", "violet tractor \udcff harbour")
    status, out, err = run(
        capsys, "user", "add", "a@example.com", "--name", "A", "--password-env", "NEW_PASSWORD"
    )
    assert status == 1 and out == ""
    assert "--password-env: the environment variable NEW_PASSWORD is not valid UTF-8 text." in err
    assert "Traceback" not in err
    assert not User.objects.exists()


@pytest.mark.django_db
def test_a_file_name_that_is_not_utf8_is_still_a_file_name(capsys, tmp_path):
    # Paths are bytes to the system: a CSV whose name is not UTF-8 is read, not refused.
    status, _, err = run(capsys, "import", "contacts", str(tmp_path / "missing-\udcff.csv"))
    assert "not valid UTF-8" not in err
    assert status != 0 and "Traceback" not in err


def test_the_installed_command_refuses_raw_bytes(operator_env):
    argv = [os.fsencode(crmail_script()), b"user", b"add", b"a@example.com", b"--name"]
    done = subprocess.run(
        [*argv, b"Bad\xffName"],
        env={**operator_env, "LC_ALL": "C.UTF-8"},
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.decode() == "Error: --name is not valid UTF-8 text.\n"
    assert not Path(operator_env["CRMAIL_DATA_DIR"]).exists()
