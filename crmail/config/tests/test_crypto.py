"""Secrets at rest: Fernet encryption, the key file, and rotating keys (``crmail keys``)."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from crmail.config import crypto
from crmail.config.cli import main
from crmail.mailboxes.models import Mailbox
from tests import factories as f

KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))


@pytest.fixture(autouse=True)
def _fresh_keys() -> Iterator[None]:
    """Every test loads its keys anew, and leaves none of them behind for the next."""
    crypto.reset_cache()
    yield
    crypto.reset_cache()


def use_keys(monkeypatch, *keys: str) -> None:
    monkeypatch.setenv("CRMAIL_ENCRYPTION_KEYS", ",".join(keys))
    crypto.reset_cache()


def raw_value(mailbox: Mailbox, column: str = "secret") -> str:
    """What the database itself holds, read past the model."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM mailboxes_mailbox WHERE id = %s",
            [mailbox.pk],
        )
        return cursor.fetchone()[0]


def mailbox(**secrets: str) -> Mailbox:
    return Mailbox.objects.create(
        owner=f.user(), email=f"box{Mailbox.objects.count()}@crmail.test", **secrets
    )


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_round_trip(monkeypatch):
    use_keys(monkeypatch, KEY_A)
    token = crypto.encrypt("correct horse battery staple")
    assert "correct horse" not in token
    assert crypto.decrypt(token) == "correct horse battery staple"
    assert crypto.encrypt("same") != crypto.encrypt("same")  # a fresh IV every time
    assert crypto.encrypt("") == "" and crypto.decrypt("") == ""
    assert crypto.decrypt(crypto.encrypt("pässwörd ✓")) == "pässwörd ✓"


@pytest.mark.django_db
def test_the_database_holds_ciphertext_not_the_password(monkeypatch):
    use_keys(monkeypatch, KEY_A)
    box = mailbox(secret="hunter2-imap", smtp_secret="hunter2-smtp", access_token="at-123")
    for column, plain in (
        ("secret", "hunter2-imap"),
        ("smtp_secret", "hunter2-smtp"),
        ("access_token", "at-123"),
    ):
        stored = raw_value(box, column)
        assert plain not in stored
        assert Fernet(KEY_A.encode()).decrypt(stored.encode()).decode() == plain
    loaded = Mailbox.objects.get(pk=box.pk)
    assert (loaded.secret, loaded.smtp_secret, loaded.access_token) == (
        "hunter2-imap",
        "hunter2-smtp",
        "at-123",
    )
    labels = {c.label for c in crypto.encrypted_columns()}
    assert {
        "mailboxes.Mailbox.secret",
        "mailboxes.Mailbox.smtp_secret",
        "mailboxes.Mailbox.access_token",
    } <= labels


@pytest.mark.django_db
def test_rotation_from_a_to_b_leaves_everything_readable_with_b_alone(monkeypatch, capsys):
    use_keys(monkeypatch, KEY_A)
    boxes = [mailbox(secret=f"password-{n}", access_token=f"token-{n}") for n in range(5)]
    empty = mailbox()  # no secrets: nothing to rotate

    use_keys(monkeypatch, KEY_B, KEY_A)
    status, out, err = run(capsys, "keys", "rotate", "--batch-size", "2")
    assert status == 0, err
    assert "Re-encrypted 10 of 10 stored secrets with the newest key" in out
    assert "mailboxes.Mailbox.secret" in out
    assert raw_value(empty) == ""
    status, out, _ = run(capsys, "keys", "rotate")  # again: nothing left to do
    assert status == 0 and "Re-encrypted 0 of 10" in out

    use_keys(monkeypatch, KEY_B)
    for n, box in enumerate(boxes):
        loaded = Mailbox.objects.get(pk=box.pk)
        assert (loaded.secret, loaded.access_token) == (f"password-{n}", f"token-{n}")
        Fernet(KEY_B.encode()).decrypt(raw_value(box).encode())
    status, out, err = run(capsys, "keys", "check")
    assert status == 0 and "all 10 stored secrets can be decrypted" in out


@pytest.mark.django_db
def test_check_counts_secrets_still_on_an_older_key(monkeypatch, capsys):
    use_keys(monkeypatch, KEY_A)
    mailbox(secret="old")
    use_keys(monkeypatch, KEY_B, KEY_A)
    mailbox(secret="new")
    report = crypto.check_all()
    assert report.total_checked == 2 and report.total_older_key == 1 and not report.unreadable
    status, _, err = run(capsys, "keys", "check")
    assert status == 0
    assert "1 secret still on an older key: run `crmail keys rotate`" in err


@pytest.mark.django_db
def test_a_secret_made_with_an_unknown_key_is_reported_in_words(monkeypatch, capsys):
    use_keys(monkeypatch, KEY_C)
    lost = mailbox(secret="made with a key nobody kept")
    use_keys(monkeypatch, KEY_A)
    kept = mailbox(secret="fine")

    with pytest.raises(crypto.SecretUnreadable, match="no longer configured"):
        Mailbox.objects.get(pk=lost.pk)
    with pytest.raises(crypto.SecretUnreadable, match="encryption key it was made with"):
        crypto.decrypt(raw_value(lost))
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt("not a fernet token at all")

    status, _, err = run(capsys, "keys", "check")
    assert status == 1
    assert "1 stored secret cannot be decrypted with any configured key" in err
    assert f"mailboxes.Mailbox id {lost.pk}, field secret" in err

    before = raw_value(lost)
    use_keys(monkeypatch, KEY_B, KEY_A)
    status, _, err = run(capsys, "keys", "rotate")
    assert status == 1
    assert f"mailboxes.Mailbox id {lost.pk}, field secret" in err
    assert "they were left as they are" in err
    assert raw_value(lost) == before  # untouched, so the right key can still read it
    Fernet(KEY_B.encode()).decrypt(raw_value(kept).encode())  # the others were rotated

    use_keys(monkeypatch, KEY_B, KEY_A, KEY_C)  # the lost key found again
    assert Mailbox.objects.get(pk=lost.pk).secret == "made with a key nobody kept"


@pytest.mark.django_db
def test_the_key_file_is_made_0600_and_never_stored_in_the_database(
    monkeypatch, settings, tmp_path
):
    monkeypatch.delenv("CRMAIL_ENCRYPTION_KEYS", raising=False)
    settings.DATA_DIR = tmp_path / "data"
    crypto.reset_cache()

    box = mailbox(secret="kept with the file's key")
    path = tmp_path / "data" / "encryption_keys"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [key] = path.read_text().split()
    assert crypto.key_source() == str(path)
    assert Fernet(key.encode()).decrypt(raw_value(box).encode()) == b"kept with the file's key"

    crypto.reset_cache()
    assert crypto.load_keys() == [key.encode()]  # read again, not made again
    assert key not in database_text()


def database_text() -> str:
    """Every text value in every table of the test database, joined."""
    values = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT * FROM {quoted}")
            for row in cursor.fetchall():
                values.extend(str(v) for v in row if v is not None)
    return "\n".join(values)


def test_malformed_keys_are_refused_in_words_without_showing_them(monkeypatch):
    use_keys(monkeypatch, KEY_A, "not-a-key-but-a-secret")
    with pytest.raises(crypto.EncryptionKeyError) as refused:
        crypto.encrypt("x")
    assert "CRMAIL_ENCRYPTION_KEYS: key 2 is not a Fernet key" in str(refused.value)
    assert "not-a-key-but-a-secret" not in str(refused.value)


def test_generate_prints_a_new_key_and_how_to_use_it(capsys):
    status, out, err = run(capsys, "keys", "generate")
    assert status == 0
    Fernet(out.strip().encode())  # a valid key
    assert "crmail keys rotate" in err
    assert run(capsys, "keys", "generate")[1] != out
    status, out, _ = run(capsys, "keys")
    assert status == 2 and "usage: crmail keys" in out
