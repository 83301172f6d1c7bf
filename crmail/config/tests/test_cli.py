"""The ``crmail`` command run in-process: messages in words, exit statuses, what it writes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from crmail import __version__
from crmail.config.cli import main
from crmail.config.commands.base import CommandError
from crmail.config.commands.serve import address_url, listen
from crmail.crm.models import Contact
from crmail.people.models import ApiToken, Role, User

STRONG = "violet tractor 1987 harbour"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _loaded_by(statement: str) -> list[str]:
    """The modules of crmail's commands and of Django that ``statement`` loads in a new
    interpreter."""
    probe = (
        f"import json, sys; {statement}; "
        "print(json.dumps([m for m in sys.modules if m.startswith(('crmail.config', 'django.'))]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_command_starts_from_a_module_that_loads_none_of_the_commands():
    # Worker processes started the "spawn" way import the main module again first: a
    # parsing worker of `crmail mailbox sync` loaded every subcommand's module for nothing.
    project = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["crmail"] == "crmail.__main__:main"
    assert _loaded_by("import crmail.__main__") == []
    done = subprocess.run(
        [sys.executable, "-m", "crmail", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout == f"crmail {__version__}\n"


def test_a_parsing_worker_loads_the_parser_without_djangos_validators():
    # Django's validators bring its translation machinery (about 0.025 s a worker); the
    # parser asks them only about addresses of an unusual form.
    assert "django.core.validators" not in _loaded_by("import crmail.mail.parse")


def test_version_and_help_need_no_database(capsys):
    assert run(capsys, "--version")[:2] == (0, f"crmail {__version__}\n")
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for command in ("init", "serve", "worker", "user", "role", "token", "import", "check"):
        assert f"    {command} " in out


def test_no_command_prints_help_and_fails(capsys):
    status, out, _ = run(capsys)
    assert status == 2 and "usage: crmail" in out


def test_usage_errors_exit_2(capsys):
    status, _, err = run(capsys, "import", "people", "x.csv")
    assert status == 2 and "invalid choice: 'people'" in err
    status, _, err = run(capsys, "serve", "--port", "99999")
    assert status == 2 and "a port number is between 1 and 65535" in err
    status, out, _ = run(capsys, "user")
    assert status == 2 and "usage: crmail user" in out


@pytest.mark.django_db
def test_user_add_with_defaults_and_no_password(capsys):
    status, out, err = run(capsys, "user", "add", "Sam@Example.com", "--name", "Sam Seller")
    assert status == 0
    assert "Added sam@example.com (Sam Seller): role Sales Representative, profile Standard." in out
    assert "cannot sign in" in err
    user = User.objects.get(email="sam@example.com")
    assert not user.has_usable_password() and not user.is_superuser


@pytest.mark.django_db
def test_user_add_names_each_bad_option(capsys, org):
    status, out, err = run(
        capsys,
        "user",
        "add",
        "new@example.com",
        "--name",
        "New",
        "--role",
        "Wizard",
        "--manager",
        "ghost@example.com",
    )
    assert status == 1 and out == ""
    assert "--role: There is no role named 'Wizard'. Roles: CEO, Manager," in err
    assert "--manager: There is no user with the email 'ghost@example.com'." in err
    assert "Traceback" not in err
    assert not User.objects.filter(email="new@example.com").exists()


@pytest.mark.django_db
def test_user_add_takes_the_password_from_the_environment(capsys, monkeypatch, org):
    monkeypatch.setenv("NEW_PASSWORD", STRONG)
    status, out, _ = run(
        capsys,
        "user",
        "add",
        "boss@example.com",
        "--name",
        "Big Boss",
        "--admin",
        "--manager",
        "manager@crmail.test",
        "--password-env",
        "NEW_PASSWORD",
    )
    assert status == 0, out
    assert STRONG not in out
    boss = User.objects.get(email="boss@example.com")
    assert boss.check_password(STRONG)
    assert (boss.role.name, boss.profile.name, boss.is_superuser, boss.is_staff) == (
        "CEO",
        "Administrator",
        True,
        True,
    )
    assert boss.manager == org.manager


@pytest.mark.django_db
def test_user_add_refuses_a_weak_or_missing_password(capsys, monkeypatch):
    monkeypatch.setenv("WEAK", "12345678")
    status, _, err = run(
        capsys, "user", "add", "a@example.com", "--name", "A", "--password-env", "WEAK"
    )
    assert status == 1
    assert "--password-env WEAK: This password is too common." in err
    assert "This password is entirely numeric." in err
    monkeypatch.delenv("UNSET_VAR", raising=False)
    status, _, err = run(
        capsys, "user", "add", "a@example.com", "--name", "A", "--password-env", "UNSET_VAR"
    )
    assert status == 1 and "environment variable UNSET_VAR is not set" in err
    assert not User.objects.exists()


@pytest.mark.django_db
def test_user_list_shows_everyone_in_full(capsys, org):
    status, out, _ = run(capsys, "user", "list")
    assert status == 0
    for email in ("admin@crmail.test", "rep@crmail.test", "east@crmail.test"):
        assert email in out


@pytest.mark.django_db
def test_roles_are_added_under_a_parent_and_listed_as_a_tree(capsys):
    assert run(capsys, "role", "add", "Inside Sales", "--parent", "manager")[0] == 0
    role = Role.objects.get(name="Inside Sales")
    assert role.parent.name == "Manager" and role.path.startswith(role.parent.path)

    status, _, err = run(capsys, "role", "add", "inside sales", "--parent", "Nobody")
    assert status == 1
    assert "NAME: A role named 'inside sales' already exists." in err
    assert "--parent: There is no role named 'Nobody'." in err

    status, out, _ = run(capsys, "role", "list")
    lines = out.splitlines()
    ceo = next(i for i, line in enumerate(lines) if "CEO" in line)
    inside = next(i for i, line in enumerate(lines) if "Inside Sales" in line)
    assert status == 0 and inside > ceo
    assert lines[inside].index("Inside Sales") > lines[ceo].index("CEO")


@pytest.mark.django_db
def test_token_create_prints_only_the_token(capsys, org):
    status, out, err = run(capsys, "token", "create", "REP@crmail.test", "--name", "ci")
    assert status == 0
    token = out.strip()
    assert out == token + "\n" and token.startswith(ApiToken.PREFIX)
    assert ApiToken.authenticate(token) == org.rep
    assert token not in err and "shown only this once" in err


@pytest.mark.django_db
def test_token_create_for_an_unknown_user_says_so(capsys):
    status, out, err = run(capsys, "token", "create", "nobody@example.com")
    assert (status, out) == (1, "")
    assert "there is no user with the email 'nobody@example.com'" in err


@pytest.mark.django_db
def test_token_list_shows_tokens_without_secrets_and_revoke_stops_one(capsys, org):
    from django.utils import timezone

    old, old_secret = ApiToken.issue(org.rep, name="laptop")
    ApiToken.objects.filter(pk=old.pk).update(
        created_at=timezone.make_aware(timezone.datetime(2026, 12, 3, 14, 5)),
        last_used_at=timezone.make_aware(timezone.datetime(2026, 12, 4, 9, 30)),
    )
    _, new_secret = ApiToken.issue(org.rep, name="ci")
    status, out, err = run(capsys, "token", "list", "rep@crmail.test")
    assert status == 0, err
    assert old_secret not in out and new_secret not in out
    line = next(line for line in out.splitlines() if "laptop" in line)
    assert f"{old.pk}" in line and f"{old.hint}…" in line
    assert "3 Dec 2026, 14:05" in line and "4 Dec 2026, 09:30" in line
    assert "never" in next(line for line in out.splitlines() if " ci " in line)

    status, out, err = run(capsys, "token", "revoke", str(old.pk))
    assert status == 0, err
    assert f"API token {old.pk} ({old.hint}…) of rep@crmail.test is revoked." in out
    assert ApiToken.authenticate(old_secret) is None
    assert ApiToken.authenticate(new_secret) == org.rep
    status, out, _ = run(capsys, "token", "revoke", str(old.pk))
    assert status == 0 and "was already revoked" in out

    status, out, err = run(capsys, "token", "revoke", "999999")
    assert status == 1 and "There is no API token with id 999999." in err
    status, out, err = run(capsys, "token", "list", "nobody@crmail.test")
    assert status == 1 and "there is no user with the email 'nobody@crmail.test'" in err
    status, out, _ = run(capsys, "token", "list", "peer@crmail.test")
    assert status == 0 and "peer@crmail.test has no API tokens." in out


@pytest.mark.django_db
def test_init_needs_the_admin_variables_when_not_in_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("CRMAIL_ADMIN_EMAIL", raising=False)
    monkeypatch.delenv("CRMAIL_ADMIN_PASSWORD", raising=False)
    status, out, err = run(capsys, "init")
    assert status == 1
    assert "Database is up to date" in out
    assert "CRMAIL_ADMIN_EMAIL is not set" in err


@pytest.mark.django_db
def test_init_creates_the_admin_once(capsys, monkeypatch):
    monkeypatch.setenv("CRMAIL_ADMIN_EMAIL", "Chief@Example.com")
    monkeypatch.setenv("CRMAIL_ADMIN_PASSWORD", "chief")
    status, _, err = run(capsys, "init")
    assert status == 1
    assert "CRMAIL_ADMIN_PASSWORD: This password is too short." in err
    assert "chief" not in err.replace("CRMAIL", "")

    monkeypatch.setenv("CRMAIL_ADMIN_PASSWORD", STRONG)
    status, out, _ = run(capsys, "init")
    assert status == 0 and "Administrator chief@example.com added" in out
    admin = User.objects.get()
    assert (admin.is_superuser, admin.is_staff, admin.role.name, admin.profile.name) == (
        True,
        True,
        "CEO",
        "Administrator",
    )
    status, out, _ = run(capsys, "init")
    assert status == 0 and "Administrator chief@example.com exists" in out
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_init_without_a_password_generates_one_and_says_in_which_file(
    capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("CRMAIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CRMAIL_ADMIN_EMAIL", "chief@example.com")
    monkeypatch.delenv("CRMAIL_ADMIN_PASSWORD", raising=False)
    status, out, err = run(capsys, "init")
    assert status == 0, err
    path = tmp_path / "initial-admin-password"
    password = path.read_text().strip()
    assert path.stat().st_mode & 0o077 == 0
    assert f"sign in with that address and the password in {path}" in " ".join(out.split())
    assert password not in out + err
    assert User.objects.get(email="chief@example.com").check_password(password)

    status, out, err = run(capsys, "init")
    assert status == 0 and "Administrator chief@example.com exists" in out
    assert str(path) in " ".join(err.split()) and password not in out + err


@pytest.mark.django_db
def test_import_lists_bad_rows_and_fails(capsys, org, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("Last Name,Email,Shoe Size\nGood,good@example.com,9\nBad,bad-address,10\n")
    status, out, err = run(capsys, "import", "contacts", str(path), "--owner", "rep@crmail.test")
    assert status == 1
    assert "│    3 │ Email: 'bad-address' is not a valid email address." in out
    assert "Imported 1 contacts from 2 rows; 1 failed." in out
    assert "Column not imported (no matching field): Shoe Size." in err
    assert Contact.objects.get().owner == org.rep


@pytest.mark.django_db
def test_import_as_the_first_admin_by_default(capsys, org, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("Last Name\nOne\nTwo\n")
    status, out, _ = run(capsys, "import", "contacts", str(path))
    assert status == 0 and "Imported 2 contacts from 2 rows." in out
    assert set(Contact.objects.values_list("owner__email", flat=True)) == {"admin@crmail.test"}


@pytest.mark.django_db
def test_import_atomic_and_missing_file(capsys, org, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("Last Name,Email\nGood,good@example.com\nBad,bad-address\n")
    status, out, _ = run(capsys, "import", "contacts", str(path), "--atomic")
    assert status == 1 and "Nothing was imported" in out
    assert not Contact.objects.exists()
    status, _, err = run(capsys, "import", "contacts", str(tmp_path / "none.csv"))
    assert status == 1 and "There is no file" in err


@pytest.mark.django_db
def test_check_reports_what_works(capsys, org):
    status, out, err = run(capsys, "check")
    assert status == 0, out
    assert "All good: Database migrations are all applied." in out
    assert "All good: Secret key comes from CRMAIL_SECRET_KEY." in out
    assert "Everything is in order." in out
    assert "memory://" in err  # the tests' queue: a warning, not a problem


@pytest.mark.django_db
def test_check_fails_without_an_admin(capsys, settings, monkeypatch):
    settings.CRMAIL_CONFIG_ERRORS = ["CRMAIL_QUEUE_URL: broken"]
    status, out, _ = run(capsys, "check")
    assert status == 1
    assert "Problem: CRMAIL_QUEUE_URL: broken" in out
    assert "Problem: No administrator exists yet: run `crmail init`." in out
    assert "2 problems found." in out


@pytest.mark.django_db
def test_commands_refuse_to_run_on_a_broken_configuration(capsys, settings, monkeypatch):
    settings.CRMAIL_CONFIG_ERRORS = ["CRMAIL_DATABASE_URL: bad scheme"]
    for argv in (["serve"], ["worker"], ["user", "list"]):
        status, _, err = run(capsys, *argv)
        assert status == 1
        assert "The configuration has problems:" in err and "bad scheme" in err


def test_a_port_in_use_is_said_in_words():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=f"Port {port} on 127.0.0.1 is already in use"):
            import waitress

            listen(waitress, lambda environ, start: [], "127.0.0.1", port, 1)


def test_addresses_become_urls_to_open():
    assert address_url("0.0.0.0", 80) == "http://127.0.0.1:80"
    assert address_url("::1", 8000) == "http://[::1]:8000"
    assert address_url("10.0.0.5", 8000) == "http://10.0.0.5:8000"


@pytest.mark.django_db
def test_check_reports_the_trusted_proxies(capsys, org, settings):
    from crmail.config import env

    settings.CRMAIL_TRUSTED_PROXIES = env.trusted_proxies("10.0.0.5, 172.16.0.0/12")
    settings.HTTPS = True
    status, out, _ = run(capsys, "check")
    assert status == 0, out
    assert "Trusted proxies (CRMAIL_TRUSTED_PROXIES): 10.0.0.5, 172.16.0.0/12." in out
    assert "Strict-Transport-Security sent" in out

    settings.CRMAIL_TRUSTED_PROXIES = ()
    status, out, err = run(capsys, "check")
    assert "No trusted proxies (CRMAIL_TRUSTED_PROXIES is empty)" in out
    assert "CRMAIL_HTTPS is on but no proxy is trusted" in err

    settings.CRMAIL_TRUSTED_PROXIES = env.trusted_proxies("0.0.0.0/0")
    status, out, err = run(capsys, "check")
    assert "CRMAIL_TRUSTED_PROXIES trusts every address" in err


@pytest.mark.django_db
def test_check_reports_the_public_address_tracked_mail_points_at(capsys, org, settings):
    from crmail.insights.models import InsightsSetting

    settings.CRMAIL_PUBLIC_URL = ""
    status, out, _ = run(capsys, "check")
    assert status == 0 and "No public address (CRMAIL_PUBLIC_URL)" in out
    InsightsSetting.objects.create(tracking=True)
    status, out, err = run(capsys, "check")
    assert "Email tracking is on, but CRMAIL_PUBLIC_URL is not set" in err
    settings.CRMAIL_PUBLIC_URL = "http://crm.example.com"
    status, out, err = run(capsys, "check")
    assert "crmail's public address is http://crm.example.com" in out
    assert "email tracking is on" in out and "Use https" in err
