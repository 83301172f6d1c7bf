"""Loaded with ``-p tests.testenv`` before Django: the environment every test run starts from.

Each run gets its own data dir and runs jobs in-process. ``CRMAIL_TEST_DB=postgresql``
points the run at a database of its own on the local PostgreSQL
(``CRMAIL_TEST_PG_URL``, default ``postgresql://127.0.0.1:5432``); pytest-django creates
it as ``test_<name>`` and drops it at the end, so concurrent runs never meet.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile

_run = f"{os.getpid()}_{secrets.token_hex(3)}"
if "CRMAIL_DATA_DIR" not in os.environ:
    _data_dir = tempfile.mkdtemp(prefix=f"crmail-test-{_run}-")
    os.environ["CRMAIL_DATA_DIR"] = _data_dir
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
os.environ.setdefault("CRMAIL_QUEUE_URL", "memory://")
os.environ.setdefault("CRMAIL_SECRET_KEY", secrets.token_urlsafe(40))
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
os.environ.setdefault("CRMAIL_LOG_LEVEL", "WARNING")


def _dns_knowing_no_name() -> str:
    """A DNS server of the run's own on loopback that holds no record: every question is
    answered NXDOMAIN at once (a port where nothing listens made each one wait out the
    resolver's 5 s). Its threads end with the run."""
    from tests.harness.dns import DnsServer

    server = DnsServer()
    server.start()
    return server.address


# No DNS question leaves the machine: crmail asks the run's own DNS server, which knows no
# name, unless a test points crmail at one with records (the dns_server fixture).
if "CRMAIL_DNS_SERVERS" not in os.environ:
    os.environ["CRMAIL_DNS_SERVERS"] = _dns_knowing_no_name()
# Webhook tests call receivers on loopback; the refusal is tested with the setting off.
os.environ.setdefault("CRMAIL_WEBHOOKS_ALLOW_PRIVATE", "1")

# The local PostgreSQL server, without a database name: tests that need a database of
# their own (a worker's, a served crmail's) create it there.
PG_URL = os.environ.get("CRMAIL_TEST_PG_URL", "postgresql://127.0.0.1:5432").rstrip("/")


def on_server(statement: str) -> None:
    """Run ``statement`` (a CREATE or DROP DATABASE) on the local PostgreSQL server, from
    its ``postgres`` database, outside any transaction."""
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as admin:
        admin.execute(statement)


if os.environ.get("CRMAIL_TEST_DB", "sqlite").lower().startswith("postgres"):
    os.environ["CRMAIL_DATABASE_URL"] = f"{PG_URL}/crmail_{_run}"
