"""`crmail mailbox`: connect with a test, sync, status, and verify that turns loss into a count."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from crmail.config.cli import main
from crmail.jobs import leases
from crmail.jobs.models import Lease
from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.tests.test_sync import mail
from tests import factories as f

pytestmark = pytest.mark.django_db


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def connected(capsys, dovecot, monkeypatch):
    login, password = dovecot.new_user()
    owner = f.user("owner@crmail.test")
    f.user("admin@crmail.test", admin=True)
    monkeypatch.setenv("MAILBOX_PW", password)
    for n in range(3):
        dovecot.deliver(login, mail(n))
    status, out, err = run(
        capsys,
        "mailbox",
        "add",
        "--user",
        owner.email,
        "--protocol",
        "imap",
        "--host",
        "127.0.0.1",
        "--port",
        str(dovecot.imap_port),
        "--security",
        "none",
        "--login",
        login,
        "--password-env",
        "MAILBOX_PW",
    )
    assert status == 0, err
    return dovecot, login, out.strip()


def test_add_prints_the_id_of_a_tested_active_mailbox(connected):
    _, _, mailbox_id = connected
    mailbox = Mailbox.objects.get(pk=int(mailbox_id))
    assert mailbox.is_active and mailbox.owner.email == "owner@crmail.test"


def test_a_wrong_password_is_refused_in_words_and_nothing_is_saved(capsys, dovecot, monkeypatch):
    login, _ = dovecot.new_user()
    f.user("owner@crmail.test")
    monkeypatch.setenv("MAILBOX_PW", "not-the-password")
    status, out, err = run(
        capsys,
        "mailbox",
        "add",
        "--user",
        "owner@crmail.test",
        "--protocol",
        "imap",
        "--host",
        "127.0.0.1",
        "--port",
        str(dovecot.imap_port),
        "--security",
        "none",
        "--login",
        login,
        "--password-env",
        "MAILBOX_PW",
    )
    assert status == 1 and out == ""
    assert "incoming server: The server refused the login name or password." in err
    assert "not-the-password" not in err
    assert not Mailbox.objects.exists()


def test_sync_status_and_verify(capsys, connected):
    dovecot, login, mailbox_id = connected
    status, out, _ = run(capsys, "mailbox", "sync", mailbox_id)
    assert status == 0 and "3 fetched" in out
    status, out, _ = run(capsys, "mailbox", "status", mailbox_id, "--json")
    data = json.loads(out)
    assert (data["state"], data["messages_stored"], data["parse_failures"]) == ("completed", 3, 0)
    assert run(capsys, "mailbox", "verify", mailbox_id)[0] == 0

    dovecot.deliver(login, mail(99))  # arrives on the server, not synced yet
    status, out, _ = run(capsys, "mailbox", "verify", mailbox_id)
    assert status == 1 and "1 message missing" in out
    run(capsys, "mailbox", "sync", mailbox_id)
    assert run(capsys, "mailbox", "verify", mailbox_id)[0] == 0


def test_verify_of_several_mailboxes_checks_each_and_passes_only_when_all_agree(capsys, connected):
    dovecot, login, first = connected
    other_login, password = dovecot.new_user()
    dovecot.deliver(other_login, mail(7))
    second = str(f.mailbox(dovecot, other_login, password, owner=f.user("two@crmail.test")).pk)
    unreachable = f.mailbox(dovecot, "gone", "secret", owner=f.user("three@crmail.test"))
    Mailbox.objects.filter(pk=unreachable.pk).update(port=9)  # nothing listens there
    assert run(capsys, "mailbox", "sync", first, second)[0] == 0
    status, out, _ = run(capsys, "mailbox", "verify", first, second)
    assert status == 0 and "All 2 mailboxes agree with their servers." in out
    assert f"Mailbox {first}, " in out and f"Mailbox {second}, " in out

    dovecot.deliver(login, mail(98))  # the first mailbox falls behind its server
    status, out, _ = run(capsys, "mailbox", "verify", first, second, str(unreachable.pk))
    assert status == 1
    assert "1 message missing" in out  # the first
    assert out.count("The server and crmail agree.") == 1  # the second
    assert "Could not read the server" in out  # the third: reported, the others still checked
    assert "2 of 3 mailboxes do not agree with their servers." in out

    status, _, err = run(capsys, "mailbox", "verify", first, "999999")
    assert status == 1 and "There is no mailbox with id 999999." in err


def test_a_second_sync_of_the_same_mailbox_is_refused(capsys, connected):
    _, _, mailbox_id = connected
    assert leases.acquire(f"mailbox-sync:{mailbox_id}", "elsewhere:1", timedelta(minutes=5))
    status, _, err = run(capsys, "mailbox", "sync", mailbox_id)
    assert status == 1 and "already running" in err


def dead_holder() -> str:
    """A lease holder naming a process of this machine that has ended."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return f"{leases.process_identity().rpartition(':')[0]}:{ended.pid}"


def test_a_sync_killed_on_this_machine_shows_as_interrupted_at_once(capsys, connected):
    _, _, mailbox_id = connected
    Mailbox.objects.filter(pk=mailbox_id).update(
        state="syncing", sync_started_at=timezone.now(), progress_total=300
    )
    assert leases.acquire(f"mailbox-sync:{mailbox_id}", "elsewhere:1", timedelta(minutes=5))
    status, out, _ = run(capsys, "mailbox", "status", mailbox_id)
    assert status == 0 and "Sync in progress" in out and "Interrupted" not in out

    Lease.objects.filter(name=f"mailbox-sync:{mailbox_id}").update(holder=dead_holder())
    status, out, _ = run(capsys, "mailbox", "status", mailbox_id)
    assert status == 0 and "Interrupted" in out and "Sync in progress" not in out
    status, out, _ = run(capsys, "mailbox", "status", mailbox_id, "--json")
    assert json.loads(out)["state"] == "interrupted"


def test_deactivate_asks_what_becomes_of_the_mail_and_lock_is_for_admins(capsys, connected):
    _, _, mailbox_id = connected
    assert run(capsys, "mailbox", "sync", mailbox_id)[0] == 0
    status, _, err = run(capsys, "mailbox", "deactivate", mailbox_id)
    assert status == 2 and "--keep-mail" in err  # the choice is required
    status, out, _ = run(capsys, "mailbox", "lock", "owner@crmail.test")
    assert status == 0 and "locked" in out
    assert Mailbox.objects.get(pk=int(mailbox_id)).locked
    status, out, _ = run(capsys, "mailbox", "deactivate", mailbox_id, "--discard-mail")
    assert status == 0 and "3 messages were deleted" in out
    mailbox = Mailbox.objects.get(pk=int(mailbox_id))
    assert not mailbox.is_active and not mailbox.locations.exists()
    assert run(capsys, "mailbox", "lock", "owner@crmail.test", "--unlock")[0] == 0
    assert not Mailbox.objects.get(pk=int(mailbox_id)).locked


def test_pop3_sync_stores_a_long_line_message_and_verify_compares_sizes(capsys, dovecot):
    from crmail.mailboxes.tests.test_pop3 import LONG_LINE

    login, password = dovecot.new_user()
    for n in range(4):
        dovecot.deliver(login, mail(n))
    dovecot.deliver(login, LONG_LINE)
    dovecot.deliver(login, mail(5))
    mailbox = f.mailbox(dovecot, login, password, protocol="pop3", keep_on_server=False)
    status, out, _ = run(capsys, "mailbox", "sync", str(mailbox.pk))
    assert status == 0 and "6 fetched" in out
    assert dovecot.messages(login) == []
    status, out, _ = run(capsys, "mailbox", "verify", str(mailbox.pk))
    assert status == 0 and "Size differs" in out


def test_a_relay_without_login_and_a_sender_name_are_set_at_add(capsys, dovecot, monkeypatch):
    login, password = dovecot.new_user()
    owner = f.user("owner@crmail.test")
    monkeypatch.setenv("MAILBOX_PW", password)
    # The relay's own name in a test run: the mailbox is saved without a connection test.
    status, out, err = run(
        capsys,
        *("mailbox", "add", "--user", owner.email, "--protocol", "imap"),
        *("--host", "127.0.0.1", "--port", str(dovecot.imap_port), "--security", "none"),
        *("--login", login, "--password-env", "MAILBOX_PW"),
        *("--smtp-host", "relay.crmail.test", "--smtp-port", "25", "--smtp-security", "none"),
        *("--smtp-no-login", "--display-name", "Acme Sales", "--no-test"),
    )
    assert status == 0, err
    mailbox = Mailbox.objects.get(pk=int(out.strip()))
    assert not mailbox.smtp_same_credentials and mailbox.smtp_login == ""
    assert mailbox.display_name == "Acme Sales"
