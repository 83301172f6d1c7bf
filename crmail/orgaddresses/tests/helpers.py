"""Helpers for organisation address tests: the code out of the mail a sink received, and a
verified address made directly (for tests of what comes after the code)."""

from __future__ import annotations

import re
from email import message_from_bytes, policy


def mailed_code(sink, count: int = 1, to: str = "") -> str:
    """The six digits of the ``count``-th message the sink received (to ``to``)."""
    got = sink.wait_for(count)[count - 1]
    if to:
        assert got.rcpt_tos == [to]
    body = message_from_bytes(got.data, policy=policy.default).get_content()
    assert "the organisation address" in body
    return re.search(r"(\d{3}) (\d{3})", body).group(0).replace(" ", "")


def verified(address: str, *, name: str = "", everyone: bool = False, profiles=()):
    """An organisation address whose code was entered."""
    from django.utils import timezone

    from crmail.orgaddresses.models import OrganisationAddress

    org = OrganisationAddress.objects.create(
        address=address, name=name, everyone=everyone, verified_at=timezone.now()
    )
    org.profiles.set(profiles)
    return org
