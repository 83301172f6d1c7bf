"""Fixtures shared by every test: the real-server harness and common data."""

import importlib.util

pytest_plugins = [
    name
    for name in ("tests.harness.plugin", "tests.fixtures", "tests.browser")
    if importlib.util.find_spec(name) is not None
]
