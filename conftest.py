"""Fixtures shared by every test: the real-server harness and common data."""

import importlib.util

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
