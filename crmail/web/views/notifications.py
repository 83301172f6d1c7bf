"""Your notifications (``/notifications/``): the feed, newest first, marking read, and the
live stream the feed page listens to (server-sent events).

The stream (``/notifications/stream/``) holds one web thread while it is open: it looks for
new rows about every second and ends after ``STREAM_SECONDS`` so the browser's EventSource
reconnects (``Last-Event-ID`` says where it was). At most ``stream_limit()`` streams are
open at once per process (``CRMAIL_NOTIFICATION_STREAMS``, default 4, half of ``crmail
serve``'s 8 web threads); a stream asked for beyond that tells the browser to try again in
a minute and ends at once, and the page keeps working without it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from crmail.config import dates, env
from crmail.config.words import count
from crmail.notifications import actions, queries
from crmail.notifications.models import Notification

PER_PAGE = 50
STREAM_SECONDS = 50.0
TICK = 1.0
RETRY_MS = 3000  # the browser's wait before reconnecting after a stream ends
FULL_RETRY_MS = 60_000  # when every stream slot is taken

_open_streams = 0
_streams_lock = threading.Lock()


def stream_limit() -> int:
    return env.whole_number("CRMAIL_NOTIFICATION_STREAMS", 4, minimum=0)


@login_required
@require_GET
def feed(request: HttpRequest) -> HttpResponse:
    rows = queries.feed(request.user)  # type: ignore[arg-type]
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/notifications.html",
        {
            "page": page,
            "unread": queries.unread_count(request.user),  # type: ignore[arg-type]
            "last_id": queries.last_id(request.user),  # type: ignore[arg-type]
        },
    )


@login_required
@require_GET
def open_notification(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one's own notification read and open its message (404 for anyone else's)."""
    row = get_object_or_404(Notification, pk=pk, user=request.user)
    actions.mark_read(request.user, [row.pk])  # type: ignore[arg-type]
    if row.message_id is None and row.link.startswith("/") and not row.link.startswith("//"):
        return redirect(row.link)  # a page of crmail's (the storage warnings)
    if row.message_id is None and row.live_mail is not None:  # mail asked live: its page
        url = reverse("web:live_message", args=[row.live_mail.mailbox_id, row.live_mail.remote_id])
        return redirect(f"{url}?on={row.module}/{row.record_id}" if row.module else url)
    return redirect("web:message", pk=row.message_id)


@login_required
@require_POST
def mark_read(request: HttpRequest) -> HttpResponse:
    """ "Mark all read", or one (``id``) of one's own; others' ids change nothing."""
    raw = request.POST.get("id", "")
    if raw == "all":
        done = actions.mark_read(request.user)  # type: ignore[arg-type]
        messages.success(
            request,
            f"Marked {count(done, 'notification')} read." if done else "Nothing was unread.",
        )
    elif raw.isdigit():
        actions.mark_read(request.user, [int(raw)])  # type: ignore[arg-type]
    else:
        messages.error(request, "Choose a notification to mark read, or all of them.")
    return redirect("web:notifications")


def as_event(row: Notification) -> str:
    """One notification as a server-sent event (its id lets a reconnect carry on)."""
    data = {
        "id": row.pk,
        "title": row.title,
        "excerpt": row.excerpt,
        "when": dates.when(row.created_at),
        "created_at": row.created_at.isoformat(),
        "url": reverse("web:notification_open", args=[row.pk]),
    }
    return f"id: {row.pk}\nevent: notification\ndata: {json.dumps(data)}\n\n"


def _count_event(n: int) -> str:
    return f"event: unread\ndata: {json.dumps({'unread': n})}\n\n"


def _last_seen(request: HttpRequest) -> int | None:
    raw = request.headers.get("Last-Event-ID", "") or request.GET.get("after", "")
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


@login_required
@require_GET
def stream(request: HttpRequest) -> HttpResponse:
    global _open_streams
    with _streams_lock:
        full = _open_streams >= stream_limit()
        if not full:
            _open_streams += 1
    if full:
        response = HttpResponse(f"retry: {FULL_RETRY_MS}\n\n", content_type="text/event-stream")
    else:
        response = StreamingHttpResponse(
            _events(request.user, _last_seen(request)),  # type: ignore[arg-type]
            content_type="text/event-stream",
        )
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _events(user: Any, after: int | None) -> Iterator[str]:
    """New notifications and the unread count as they change, for ``STREAM_SECONDS``."""
    global _open_streams
    try:
        yield f"retry: {RETRY_MS}\n\n"
        last = queries.last_id(user) if after is None else after
        unread = -1
        deadline = time.monotonic() + STREAM_SECONDS
        while True:
            try:
                rows = queries.newer_than(user, last)
                now_unread = queries.unread_count(user)
            except DatabaseError:
                rows, now_unread = [], unread  # a busy database: next tick
            for row in rows:
                last = row.pk
                yield as_event(row)
            if now_unread != unread:
                unread = now_unread
                yield _count_event(unread)
            else:
                yield ": tick\n\n"  # finds a closed connection within a second
            if time.monotonic() >= deadline:
                return
            time.sleep(TICK)
    finally:
        with _streams_lock:
            _open_streams -= 1
