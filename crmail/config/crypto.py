"""Secrets at rest (mail passwords, OAuth tokens): Fernet, with key rotation.

Keys come from ``CRMAIL_ENCRYPTION_KEYS`` (comma-separated Fernet keys, newest first) or,
in the single-machine default, from ``DATA_DIR/encryption_keys`` (created 0600 on first
use, one key a line, newest first). They are never stored in the database, so a copy of
the database alone reveals no password. To rotate: put a new key first (``crmail keys
generate`` makes one), keep the old ones after it, run ``crmail keys rotate`` (re-encrypts
every secret with the newest key), check with ``crmail keys check``, then drop the old.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

ENV_VAR = "CRMAIL_ENCRYPTION_KEYS"
KEY_FILE_NAME = "encryption_keys"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


class EncryptionKeyError(ValueError):
    """The configured keys are missing or malformed (said in words, never showing a key)."""


def _key_file() -> Path:
    return Path(settings.DATA_DIR) / KEY_FILE_NAME


def key_source() -> str:
    """Where the keys come from, in words (for messages)."""
    if os.environ.get(ENV_VAR, "").strip():
        return ENV_VAR
    return str(_key_file())


def generate_key() -> str:
    """A new random Fernet key (url-safe base64, 32 bytes)."""
    return Fernet.generate_key().decode()


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_key() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def load_keys() -> list[bytes]:
    """The configured keys, newest first; generates the key file when nothing is set."""
    raw = os.environ.get(ENV_VAR, "").strip()
    source = ENV_VAR
    if not raw:
        path = _key_file()
        if not path.exists():
            _create_key_file(path)
        raw = path.read_text()
        source = str(path)
    keys = [k.strip().encode() for k in raw.replace("\n", ",").split(",") if k.strip()]
    if not keys:
        raise EncryptionKeyError(f"{source} holds no encryption key.")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise EncryptionKeyError(
                f"{source}: key {position} is not a Fernet key (32 url-safe base64-encoded "
                "bytes); `crmail keys generate` makes one."
            ) from None
    return keys


@lru_cache(maxsize=1)
def _fernets() -> tuple[MultiFernet, Fernet]:
    keys = load_keys()
    return MultiFernet([Fernet(k) for k in keys]), Fernet(keys[0])


def _fernet() -> MultiFernet:
    return _fernets()[0]


def reset_cache() -> None:
    """Forget the loaded keys (after the environment or the key file changed)."""
    _fernets.cache_clear()


UNREADABLE = (
    "A stored secret cannot be decrypted: the encryption key it was made with is "
    "no longer configured (CRMAIL_ENCRYPTION_KEYS or the data dir's encryption_keys)."
)


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(UNREADABLE) from None


class EncryptedTextField(models.TextField):
    """Text encrypted with crmail's Fernet keys; the attribute holds the plaintext.

    Every field of this class is found by ``encrypted_columns``, so ``crmail keys rotate``
    and ``check`` cover it without being told."""

    def from_db_value(self, value, expression, connection):  # type: ignore[no-untyped-def]
        return decrypt(value) if value else ""

    def get_prep_value(self, value):  # type: ignore[no-untyped-def]
        return encrypt(value) if value else ""


def rotate(token: str) -> str:
    """The same secret encrypted with the newest key."""
    if not token:
        return ""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(UNREADABLE) from None


def uses_newest_key(token: str) -> bool:
    """Whether ``token`` was made with the newest key (so rotation can leave it)."""
    if not token:
        return True
    try:
        _fernets()[1].decrypt(token.encode())
    except InvalidToken:
        return False
    return True


# -- every encrypted value in the database -------------------------------------------


@dataclass(frozen=True)
class EncryptedColumn:
    """One encrypted field of one model, as the database names it."""

    label: str  # "mailboxes.Mailbox.secret": what messages show
    model: type[models.Model]
    table: str
    column: str
    pk_column: str


@dataclass
class Unreadable:
    label: str
    pk: Any

    def __str__(self) -> str:
        model, _, name = self.label.rpartition(".")
        return f"{model} id {self.pk}, field {name}"


@dataclass
class KeyReport:
    """What ``rotate_all`` or ``check_all`` found, per column and in total."""

    checked: dict[str, int] = field(default_factory=dict)  # non-empty values seen
    rotated: dict[str, int] = field(default_factory=dict)  # re-encrypted with the newest key
    older_key: dict[str, int] = field(default_factory=dict)  # readable, but not newest key
    unreadable: list[Unreadable] = field(default_factory=list)

    @property
    def total_checked(self) -> int:
        return sum(self.checked.values())

    @property
    def total_rotated(self) -> int:
        return sum(self.rotated.values())

    @property
    def total_older_key(self) -> int:
        return sum(self.older_key.values())


def encrypted_columns() -> list[EncryptedColumn]:
    """Every field of every installed model that holds secrets encrypted with these keys."""
    from django.apps import apps

    columns = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        for f in meta.local_concrete_fields:
            if isinstance(f, EncryptedTextField):
                columns.append(
                    EncryptedColumn(
                        label=f"{meta.app_label}.{meta.object_name}.{f.name}",
                        model=model,
                        table=meta.db_table,
                        column=f.column,
                        pk_column=meta.pk.column,
                    )
                )
    return sorted(columns, key=lambda c: c.label)


def _raw_batches(column: EncryptedColumn, batch_size: int) -> Iterator[list[tuple[Any, str]]]:
    """(pk, ciphertext) of every non-empty value, in pk order, ``batch_size`` at a time.

    Raw SQL: loading through the model would decrypt, and one unreadable value would stop
    the whole batch.
    """
    from django.db import connection

    q = connection.ops.quote_name
    table, col, pk = q(column.table), q(column.column), q(column.pk_column)
    last: Any = None
    while True:
        where = f"{col} IS NOT NULL AND {col} <> ''"
        params: list[Any] = []
        if last is not None:
            where += f" AND {pk} > %s"
            params.append(last)
        sql = f"SELECT {pk}, {col} FROM {table} WHERE {where} ORDER BY {pk} LIMIT %s"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, batch_size])
            rows = [(row[0], str(row[1])) for row in cursor.fetchall()]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def check_all(batch_size: int = 500) -> KeyReport:
    """Try to decrypt every stored secret; nothing is written."""
    report = KeyReport()
    for column in encrypted_columns():
        report.checked.setdefault(column.label, 0)
        for rows in _raw_batches(column, batch_size):
            for pk, token in rows:
                report.checked[column.label] += 1
                if uses_newest_key(token):
                    continue
                try:
                    decrypt(token)
                except SecretUnreadable:
                    report.unreadable.append(Unreadable(column.label, pk))
                else:
                    report.older_key[column.label] = report.older_key.get(column.label, 0) + 1
    return report


def rotate_all(
    batch_size: int = 500, progress: Callable[[str, int], None] | None = None
) -> KeyReport:
    """Re-encrypt every stored secret that is not yet on the newest key, a batch at a time.

    Each batch is one transaction, and each row is written only if it still holds the value
    that was read (a token refreshed meanwhile is left as it is: it is new, so already on the
    newest key). Values no configured key can read are listed, never changed. Safe to rerun.
    """
    from django.db import connection, transaction

    q = connection.ops.quote_name
    report = KeyReport()
    for column in encrypted_columns():
        report.checked.setdefault(column.label, 0)
        report.rotated.setdefault(column.label, 0)
        table, col, pk = q(column.table), q(column.column), q(column.pk_column)
        sql = f"UPDATE {table} SET {col} = %s WHERE {pk} = %s AND {col} = %s"  # noqa: S608
        for rows in _raw_batches(column, batch_size):
            updates = []
            for row_pk, token in rows:
                report.checked[column.label] += 1
                if uses_newest_key(token):
                    continue
                try:
                    updates.append((rotate(token), row_pk, token))
                except SecretUnreadable:
                    report.unreadable.append(Unreadable(column.label, row_pk))
            if updates:
                with transaction.atomic(), connection.cursor() as cursor:
                    for params in updates:
                        cursor.execute(sql, list(params))
                        report.rotated[column.label] += cursor.rowcount
            if progress:
                progress(column.label, report.checked[column.label])
    return report
