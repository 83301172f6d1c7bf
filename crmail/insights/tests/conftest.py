from __future__ import annotations

import pytest

from .world import PUBLIC, sender, switch_on


@pytest.fixture
def on(settings, smtp_sink):
    """A sender whose mail goes to ``smtp_sink``, with tracking on and a public address."""
    settings.CRMAIL_PUBLIC_URL = PUBLIC
    rep = sender(smtp_sink)
    switch_on(rep.user)
    return rep
