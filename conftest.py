"""Fixtures shared by every test: the real-server harness and common data."""

import importlib.util

import pytest

pytest_plugins = [
    name
    for name in (
        "tests.harness.plugin",
        "tests.fixtures",
        "tests.browser",
        "crmail.mailboxes.tests.standins.oauth",  # auth_server, oauth_server, oauth_dovecot
    )
    if importlib.util.find_spec(name) is not None
]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, migrated_database):  # type: ignore[no-untyped-def]
    """The run's test database, just migrated, is kept as the run's migrated database
    (``tests.operator.MigratedDatabase``): one migration less for the run (6-16 s)."""
    from django.db import connection

    with django_db_blocker.unblock():
        migrated_database.keep(connection)
