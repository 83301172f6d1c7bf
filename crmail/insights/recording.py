"""Recording an open or a click (SPEC F9, decision 057).

The endpoints answer first (the same answer for every token they would give it to) and
record after the answer has gone out (``web.views.tracking``), so the time an answer
takes says nothing about the token. Only a token crmail signed (``tokens.read``) of a
message it tracked is recorded; anything else records nothing.

What fetched is judged by ``scanners``, and by timing here: within ``SOON`` of sending
(scanners read mail as it arrives), or several different links of one message followed
within ``BURST`` (a scanner follows them all; a person reads first) — the earlier clicks
of such a burst are marked too. Marked hits are kept, never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from crmail.insights import scanners
from crmail.insights.models import Click, MessageInsight, Open
from crmail.insights.tokens import Token

log = logging.getLogger(__name__)
SOON = timedelta(seconds=10)
BURST = timedelta(seconds=2)
TOO_SOON = "within seconds of sending"
IN_A_BURST = "several links followed within seconds"


def record(
    token: Token,
    *,
    user_agent: str,
    address: str,
    method: str = "GET",
    meta: Mapping[str, str] | None = None,
    at: datetime | None = None,
) -> Open | Click | None:
    """Record what ``token`` says happened; None when its message is not one crmail tracks
    (any more: deleted)."""
    at = at or timezone.now()
    insight = (
        MessageInsight.objects.filter(key=token.key, tracked=True).select_related("sent").first()
    )
    if insight is None:
        return None
    verdict = scanners.judge(user_agent, address, method, meta)
    scanner, reason = verdict.scanner, verdict.reason
    if not scanner and at - insight.sent.sent_at < SOON:
        scanner, reason = True, TOO_SOON
    common = {
        "sent_id": insight.sent_id,
        "at": at,
        "client": verdict.client,
        "user_agent": " ".join(user_agent.split())[:300],
    }
    if token.kind == "o":
        return Open.objects.create(scanner=scanner, scanner_reason=reason, **common)
    with transaction.atomic():
        burst = Click.objects.filter(sent_id=insight.sent_id, at__gte=at - BURST, at__lte=at)
        burst = burst.exclude(link=token.link)
        if burst.exists():
            burst.filter(scanner=False).update(scanner=True, scanner_reason=IN_A_BURST)
            if not scanner:
                scanner, reason = True, IN_A_BURST
        return Click.objects.create(
            scanner=scanner, scanner_reason=reason, link=token.link, url=token.url, **common
        )
