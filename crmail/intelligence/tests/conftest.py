from __future__ import annotations

import pytest

from crmail.events import dispatch
from crmail.intelligence import analysis, pipeline

from .substitute import Substitute


@pytest.fixture
def substitute(monkeypatch):
    """The deterministic analyser in place of the real one."""
    fake = Substitute()
    monkeypatch.setattr(analysis, "analyse", fake.analyse)
    monkeypatch.setattr(analysis, "summarise", fake.summarise)
    monkeypatch.setattr(analysis, "available_tiers", fake.available_tiers)
    pipeline._version.cache_clear()
    yield fake
    pipeline._version.cache_clear()


@pytest.fixture
def flow(django_capture_on_commit_callbacks):
    """Run what commits inside as crmail does: the eager consumers (linking) at once, the
    others as jobs, which the tests' queue runs at once."""
    dispatch.start_all()
    return lambda: django_capture_on_commit_callbacks(execute=True)
