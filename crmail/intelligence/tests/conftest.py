from __future__ import annotations

import pytest

from crmail.events import dispatch
from crmail.intelligence import pipeline

from .substitute import engine_installed, use_substitute


@pytest.fixture
def substitute(monkeypatch):
    """The deterministic analyser in place of the real one: for a test that needs a
    label it decides, or counts its calls."""
    pipeline._version.cache_clear()
    yield use_substitute(monkeypatch)
    pipeline._version.cache_clear()


@pytest.fixture
def analyser(monkeypatch):
    """crmail's own analysis (the substitute only where it is not installed): for tests
    on mail whose labels are beyond doubt (an angry complaint, a signature with a phone)."""
    pipeline._version.cache_clear()
    yield None if engine_installed() else use_substitute(monkeypatch)
    pipeline._version.cache_clear()


@pytest.fixture
def flow(django_capture_on_commit_callbacks):
    """Run what commits inside as crmail does: the eager consumers (linking) at once, the
    others as jobs, which the tests' queue runs at once."""
    dispatch.start_all()
    return lambda: django_capture_on_commit_callbacks(execute=True)
