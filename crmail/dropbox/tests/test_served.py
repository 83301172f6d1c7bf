"""The receiver as an operator runs it, on a SQLite data dir of its own.

- kill -9 between storing a dropbox message and saying 250: the client's retry to the
  restarted receiver stores nothing twice, and nothing is lost (`crmail init`, `crmail
  dropbox address`, `crmail dropbox serve` killed by SIGKILL at the failpoint after the
  store's commit, before the reply, then started again for the retry);
- `crmail serve` with CRMAIL_DROPBOX_PORT runs the receiver, and its embedded job workers
  file the mail on the contact's deal.
"""

from __future__ import annotations

import smtplib
import socket
import sqlite3
import subprocess
import time
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest

import crmail
from tests.operator import crmail as run_crmail
from tests.operator import crmail_script, free_port, start_serve

pytestmark = pytest.mark.database_independent  # a data dir of its own

ADMIN = {
    "CRMAIL_ADMIN_EMAIL": "owner@example.com",
    "CRMAIL_ADMIN_PASSWORD": "violet tractor 1987 harbour",
}
DOMAIN = "dropbox.example.com"


def counts(db: Path) -> tuple[int, int, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(f"select count(*) from {table}").fetchone()[0]
            for table in ("mail_message", "mailboxes_sentmessage", "dropbox_delivery")
        )


def start_receiver(env: dict[str, str], port: int, **extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [crmail_script(), "dropbox", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, **extra},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            assert time.monotonic() < deadline, "the receiver did not listen within 60 s"
            time.sleep(0.1)


def set_up(migrated_env: dict[str, str]) -> tuple[dict[str, str], str, bytes, Path]:
    """An initialised data dir: (environment, the admin's dropbox address, a message to
    Bcc to it, the SQLite file)."""
    env = {
        **migrated_env,
        **ADMIN,
        "CRMAIL_DROPBOX_DOMAIN": DOMAIN,
        # The subprocess runs this checkout's crmail, as the test does.
        "PYTHONPATH": str(Path(crmail.__file__).resolve().parent.parent),
    }
    assert run_crmail(env, "init").returncode == 0
    shown = run_crmail(env, "dropbox", "address", ADMIN["CRMAIL_ADMIN_EMAIL"])
    assert shown.returncode == 0, shown.stderr
    dropbox = shown.stdout.strip()
    assert dropbox.endswith("@" + DOMAIN)
    msg = EmailMessage()
    msg["From"] = ADMIN["CRMAIL_ADMIN_EMAIL"]
    msg["To"] = "ann@acme.example"
    msg["Subject"] = "The contract"
    msg["Message-ID"] = "<contract-1@example.com>"
    msg.set_content("Signed copy attached soon.")
    return (
        env,
        dropbox,
        msg.as_bytes(policy=SMTP_POLICY),
        Path(env["CRMAIL_DATA_DIR"]) / "crmail.sqlite3",
    )


def test_kill_9_after_storing_before_250_then_the_retry_makes_one_message(migrated_env):
    env, dropbox, raw, db = set_up(migrated_env)

    port = free_port()
    doomed = start_receiver(env, port, CRMAIL_FAILPOINT="dropbox-stored")
    with (
        pytest.raises(smtplib.SMTPServerDisconnected),
        smtplib.SMTP("127.0.0.1", port, timeout=30) as client,
    ):
        client.sendmail(ADMIN["CRMAIL_ADMIN_EMAIL"], [dropbox], raw)
    assert doomed.wait(timeout=30) == -9  # killed at the failpoint, no reply given
    assert counts(db) == (1, 1, 1)  # stored before the reply would have been given

    again = start_receiver(env, port)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:  # the client's retry
            assert client.sendmail(ADMIN["CRMAIL_ADMIN_EMAIL"], [dropbox], raw) == {}
    finally:
        again.terminate()
        err = again.communicate(timeout=30)[1].decode()
    assert "Traceback" not in err, err
    assert counts(db) == (1, 1, 1)
    checked = run_crmail(env, "blobs", "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 message" in checked.stdout


def test_crmail_serve_runs_the_receiver_and_files_the_mail_on_the_deal(migrated_env, tmp_path):
    env, dropbox, raw, db = set_up(migrated_env)
    contacts, deals = tmp_path / "contacts.csv", tmp_path / "deals.csv"
    contacts.write_text("first_name,last_name,email\nAnn,Lee,ann@acme.example\n")
    deals.write_text("name,stage,contact\nAcme contract,Negotiation/Review,ann@acme.example\n")
    for module, path in (("contacts", contacts), ("deals", deals)):
        done = run_crmail(env, "import", module, str(path))
        assert done.returncode == 0, done.stdout + done.stderr
    port = free_port()
    with start_serve({**env, "CRMAIL_DROPBOX_PORT": str(port), "CRMAIL_DROPBOX_HOST": "127.0.0.1"}):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            assert client.sendmail(ADMIN["CRMAIL_ADMIN_EMAIL"], [dropbox], raw) == {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                filed = conn.execute(
                    "select d.name from linking_link l join crm_deal d on d.id = l.record_id"
                    " where l.module = 'deals' and l.reason = 'bcc_dropbox'"
                ).fetchall()
            if filed:
                break
            time.sleep(0.2)
    assert filed == [("Acme contract",)]
