"""Settings from the environment: database and queue URLs, the secret key file."""

from __future__ import annotations

import stat

import pytest

from crmail.config import env

pytestmark = pytest.mark.database_independent  # no database: one pass runs it


def test_default_database_is_sqlite_in_wal_mode_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("CRMAIL_DATABASE_URL", raising=False)
    db = env.database_settings(tmp_path)
    assert db["ENGINE"].endswith("sqlite3")
    assert db["NAME"] == str(tmp_path / "crmail.sqlite3")
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]


@pytest.mark.parametrize("url", ["", "sqlite:////srv/crmail/db.sqlite3", "postgresql://db/crmail"])
def test_connections_are_kept_from_one_job_or_request_to_the_next(tmp_path, monkeypatch, url):
    monkeypatch.setenv("CRMAIL_DATABASE_URL", url)
    db = env.database_settings(tmp_path)
    assert (db["CONN_MAX_AGE"], db["CONN_HEALTH_CHECKS"]) == (60, True)


def test_postgresql_url_is_split_into_its_parts(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMAIL_DATABASE_URL", "postgresql://crm:p%40ss@db.internal:5433/crmail")
    db = env.database_settings(tmp_path)
    assert (db["ENGINE"], db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]) == (
        "django.db.backends.postgresql",
        "db.internal",
        "5433",
        "crmail",
        "crm",
        "p@ss",
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "unsupported scheme 'mysql'"),
        ("postgresql://127.0.0.1", "needs a database name"),
        ("not a url", "is not a URL"),
        ("user:secret-pw@host", "unsupported scheme"),
    ],
)
def test_bad_database_urls_are_explained(tmp_path, monkeypatch, url, message):
    monkeypatch.setenv("CRMAIL_DATABASE_URL", url)
    with pytest.raises(env.ConfigError, match=message) as err:
        env.database_settings(tmp_path)
    assert "secret-pw" not in str(err.value)


def test_secret_key_is_generated_once_and_kept_private(tmp_path, monkeypatch):
    monkeypatch.delenv("CRMAIL_SECRET_KEY", raising=False)
    first = env.secret_key(tmp_path / "data")
    assert len(first) >= 50
    assert env.secret_key(tmp_path / "data") == first
    mode = stat.S_IMODE((tmp_path / "data" / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_secret_key_from_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMAIL_SECRET_KEY", "from-env")
    assert env.secret_key(tmp_path) == "from-env"
    assert not (tmp_path / "secret_key").exists()


def test_sign_in_limits_must_be_whole_numbers(monkeypatch):
    monkeypatch.setenv("CRMAIL_LOGIN_MAX_FAILURES", "five")
    with pytest.raises(env.ConfigError, match="CRMAIL_LOGIN_MAX_FAILURES must be a whole number"):
        env.whole_number("CRMAIL_LOGIN_MAX_FAILURES", 5)
    monkeypatch.setenv("CRMAIL_LOGIN_MAX_FAILURES", "-1")
    with pytest.raises(env.ConfigError, match="must be at least 0"):
        env.whole_number("CRMAIL_LOGIN_MAX_FAILURES", 5)
    monkeypatch.setenv("CRMAIL_LOGIN_MAX_FAILURES", " 7 ")
    assert env.whole_number("CRMAIL_LOGIN_MAX_FAILURES", 5) == 7
    monkeypatch.delenv("CRMAIL_LOGIN_MAX_FAILURES")
    assert env.whole_number("CRMAIL_LOGIN_MAX_FAILURES", 5) == 5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("https://crm.example.com", "https://crm.example.com"),
        ("HTTPS://CRM.Example.com:8443/", "https://crm.example.com:8443"),
        ("http://10.0.0.5:8000", "http://10.0.0.5:8000"),
    ],
)
def test_the_public_address_is_an_origin(monkeypatch, raw, expected):
    monkeypatch.setenv("CRMAIL_PUBLIC_URL", raw)
    assert env.public_url("CRMAIL_PUBLIC_URL") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "crm.example.com",
        "ftp://crm.example.com",
        "https://crm.example.com/crmail",
        "https://crm.example.com/?a=1",
        "https://user:pw@crm.example.com",
        "https://crm.example.com:99999",
        "https://crm.exa mple.com",
        "https://",
    ],
)
def test_anything_else_is_refused_in_words(monkeypatch, raw):
    monkeypatch.setenv("CRMAIL_PUBLIC_URL", raw)
    with pytest.raises(env.ConfigError, match="CRMAIL_PUBLIC_URL must be crmail's address"):
        env.public_url("CRMAIL_PUBLIC_URL")
