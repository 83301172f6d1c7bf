"""Common pytest fixtures: a fast password hasher, an organisation, API clients."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator

import pytest

from tests import factories


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:  # type: ignore[no-untyped-def]
    """PBKDF2 at full strength costs a quarter second a user; tests need no strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed_starting_data() -> None:
    """Put back what the data migrations create (roles, profiles, defaults, the pipeline).

    Transactional tests empty every table when they end; the seed functions are idempotent.
    (Serialized rollback does not help: with Playwright's sync API or the mail watcher's
    thread running, the connection a test sees is not the one its setup serialized.)
    """
    from django.apps import apps

    for module in (
        "crmail.people.migrations.0002_default_roles_profiles",
        "crmail.crm.migrations.0003_default_pipeline",
    ):
        importlib.import_module(module).seed(apps, None)


@pytest.fixture(autouse=True)
def _forget_the_words_the_index_wrote() -> None:
    """The search index remembers, in each process, the words it wrote to PostgreSQL's
    word list once their batch committed (``search.index._add_words``). A test's
    transaction is rolled back at its end even when it ran the commit callbacks it
    captured: what a test made the index remember is forgotten with it."""
    from crmail.search import index

    index._known.clear()


@pytest.fixture(scope="session", autouse=True)
def _live_server_answers_at_once() -> Iterator[None]:
    """The test server (Django's, on wsgiref) writes a response's status line and headers
    in several small writes; with Nagle's algorithm on, each one after the first waits for
    the client's delayed acknowledgement, 40 ms a response on Linux. crmail's own server
    (waitress) sets TCP_NODELAY; the test server's connections get it too."""
    import contextlib
    import socket

    from django.core.servers.basehttp import WSGIRequestHandler

    original = WSGIRequestHandler.setup

    def setup(self: WSGIRequestHandler) -> None:
        with contextlib.suppress(OSError):  # not a TCP socket
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        original(self)

    WSGIRequestHandler.setup = setup  # type: ignore[method-assign]
    yield
    WSGIRequestHandler.setup = original  # type: ignore[method-assign]


@pytest.fixture(scope="session", autouse=True)
def _flush_by_delete_on_postgresql() -> Iterator[None]:
    """A transactional test ends by emptying every table. On PostgreSQL, Django's
    ``TRUNCATE`` of every table takes seconds (each table and index gets new files), a
    ``DELETE`` of their few rows a few milliseconds; in one transaction, as the flush runs
    it, the deferred foreign keys are checked once all rows are gone, and the search
    index's trigger empties it as on SQLite. Resetting sequences still truncates."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def delete(self, style, tables, *, reset_sequences=False, allow_cascade=False):  # type: ignore[no-untyped-def]
        if reset_sequences:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        return [f"DELETE FROM {self.quote_name(table)};" for table in tables]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", delete)
        yield


@pytest.fixture(autouse=True)
def _starting_data_in_transactional_tests(request) -> None:  # type: ignore[no-untyped-def]
    """Transactional tests start with the starting data too, like every other test."""
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server")
    )
    if transactional:
        request.getfixturevalue("transactional_db")
        seed_starting_data()


@pytest.fixture
def own_mail_sink(settings, smtp_sink):  # type: ignore[no-untyped-def]
    """crmail's own mail (verification codes) sent to a real SMTP sink, which it returns."""
    settings.CRMAIL_SMTP_URL = f"smtp://{smtp_sink.host}:{smtp_sink.port}?tls=none"
    settings.CRMAIL_MAIL_FROM = "crmail@crm.example.com"
    return smtp_sink


@pytest.fixture
def org(db) -> factories.Org:  # type: ignore[no-untyped-def]
    """Admin, manager, the manager's rep, the rep's peer, and a manager of another branch."""
    return factories.org()


BROWSER_SEVENTHS_FIRST = 4  # of the browser test modules, in sevenths, in the first pass


def pytest_collection_modifyitems(config, items) -> None:  # type: ignore[no-untyped-def]
    """Soak tests run only when CRMAIL_SOAK=1: CI keeps to the quick suite.

    When ``scripts/test`` runs the SQLite and PostgreSQL passes side by side, each runs
    once what needs running once, so that the two take about as long: tests marked
    ``database_independent`` run in the SQLite pass only (CRMAIL_TEST_SKIP_DATABASE_INDEPENDENT=1
    in the other), and the browser tests are shared out, each module in one pass
    (CRMAIL_TEST_BROWSER_SHARE=0 in the SQLite pass, 1 in the other: by the CRC-32 of the
    module's path, four in seven of the modules in the SQLite pass, whose other tests take
    less time: the walks and property tests are slower on PostgreSQL). What a page's
    script and layout do is the same on either database, and what the database changes
    under a page, the view and API tests check on both. A pass on its own
    (``CRMAIL_TEST_DATABASES=sqlite``) runs everything."""
    import zlib

    skips = []
    if os.environ.get("CRMAIL_SOAK") != "1":
        skips.append(("soak", "soak test: set CRMAIL_SOAK=1 to run"))
    if os.environ.get("CRMAIL_TEST_SKIP_DATABASE_INDEPENDENT") == "1":
        skips.append(("database_independent", "the same on every database: run in another pass"))
    for marker, reason in skips:
        for item in items:
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))
    share = os.environ.get("CRMAIL_TEST_BROWSER_SHARE", "")
    if share in ("0", "1"):
        skip = pytest.mark.skip(reason="the page's behaviour in a browser: run in another pass")
        for item in items:
            module = item.nodeid.split("::", 1)[0]
            in_second = zlib.crc32(module.encode()) % 7 >= BROWSER_SEVENTHS_FIRST
            if "browser" in item.keywords and in_second != (share == "1"):
                item.add_marker(skip)


@pytest.fixture
def operator_env(tmp_path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """An environment for running `crmail` as a subprocess on a fresh data dir."""
    from tests.operator import operator_environment

    return operator_environment(tmp_path)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A database migrated once per run, to copy (``tests.operator.MigratedDatabase``)."""
    from tests.operator import MigratedDatabase

    database = MigratedDatabase(tmp_path_factory.mktemp("migrated"))
    yield database
    database.drop()


@pytest.fixture
def migrated_env(operator_env, migrated_database) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """``operator_env`` whose data dir already holds an up-to-date SQLite database: for
    tests whose subject is not `crmail init` on a fresh data dir."""
    return migrated_database.into(operator_env)
