"""The Mailbox actions card of a message page: read/unread, flag, move, delete (SPEC F2).

The card acts on the viewer's own copy of the message (``twoway.own_copy``): the server
is changed first, then crmail's row, and a server that refuses leaves both as they were
and says why on the page. A message the viewer reads through a colleague's sharing has
no copy of theirs, and the card says so instead of offering actions.

Opening the page marks the viewer's own unread copy read, unless they turned that off on
their Account page: as a job (``tasks.mark_read``), so the page never waits for a slow or
unreachable server; a refusal leaves the copy unread and the next opening tries again.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from crmail.mail.models import Message
from crmail.mailboxes import twoway
from crmail.mailboxes.models import Location, SentMessage, Source
from crmail.mailboxes.tasks import mark_read
from crmail.people.models import User
from crmail.sharing.visibility import may_see_message

log = logging.getLogger(__name__)


def _viewer(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _copy_or_404(request: HttpRequest, pk: int) -> tuple[Message, Location]:
    """The message the viewer may see and their own copy of it; 404 when either is not."""
    message = get_object_or_404(Message.objects.defer("body_text"), pk=pk)
    viewer = _viewer(request)
    if not may_see_message(viewer, message):
        raise Http404("No such message.")
    copy = twoway.own_copy(viewer, message)
    if copy is None:
        raise Http404("This message is not in a mailbox of yours.")
    return message, copy


def _mark_read_on_open(viewer: User, message: Message) -> bool:
    """Queue marking the viewer's unread copy read; True when it was queued."""
    copy = twoway.wants_mark_read(viewer, message)
    if copy is None:
        return False
    try:
        mark_read(viewer.pk, copy.pk)
    except Exception as exc:  # the queue is down: the page shows all the same
        log.warning("could not queue marking copy %s read: %s", copy.pk, type(exc).__name__)
        return False
    return True


def mailbox_context(request: HttpRequest, message: Message, *, opening: bool) -> dict[str, object]:
    """The card's context; ``opening``: this request opens the message (mark it read)."""
    viewer = _viewer(request)
    queued = _mark_read_on_open(viewer, message) if opening else False
    copy = twoway.own_copy(viewer, message)
    folders = list(
        twoway.own_copies(viewer, message)
        .select_related("folder", "mailbox")
        .order_by("mailbox__email", "folder__name")
    )
    return {
        "mailbox_card": {
            "copy": copy,
            "folders": folders,
            "targets": list(twoway.move_targets(copy)) if copy is not None else [],
            "marking": queued and copy is not None and not copy.seen,
            "one_way": copy is not None and not twoway.two_way(copy.mailbox),
            "sent_by_viewer": copy is None
            and SentMessage.objects.filter(message=message, sender_id=viewer.pk).exists(),
            "dropbox": copy is None
            and SentMessage.objects.filter(message=message, source=Source.DROPBOX).exists(),
            "held_by_others": copy is None
            and Location.objects.filter(message=message)
            .exclude(mailbox__owner_id=viewer.pk)
            .exists(),
        }
    }


def _back(message: Message) -> HttpResponse:
    return redirect(reverse("web:message", args=[message.pk]) + "#mailbox-actions")


def _flag_value(raw: str | None) -> bool | None:
    return {"1": True, "0": False}.get((raw or "").strip())


@login_required
@require_POST
def message_mark(request: HttpRequest, pk: int) -> HttpResponse:
    """``seen=1|0`` marks read or unread; ``flagged=1|0`` flags or unflags."""
    message, copy = _copy_or_404(request, pk)
    seen, flagged = _flag_value(request.POST.get("seen")), _flag_value(request.POST.get("flagged"))
    if seen is None and flagged is None:
        messages.error(request, "Choose read, unread, flag or unflag.")
        return _back(message)
    try:
        if seen is not None:
            twoway.set_seen(_viewer(request), copy, seen)
            messages.success(request, "Marked read." if seen else "Marked unread.")
        if flagged is not None:
            twoway.set_flagged(_viewer(request), copy, flagged)
            messages.success(request, "Flagged." if flagged else "Flag removed.")
    except twoway.Refused as exc:
        messages.error(request, str(exc))
    return _back(message)


@login_required
@require_POST
def message_move(request: HttpRequest, pk: int) -> HttpResponse:
    message, copy = _copy_or_404(request, pk)
    raw = (request.POST.get("folder") or "").strip()
    if not raw.isdigit() or len(raw) > 18:
        messages.error(request, "Choose a folder to move this message to.")
        return _back(message)
    try:
        moved = twoway.move(_viewer(request), copy, int(raw))
    except twoway.BadFolder as exc:
        messages.error(request, str(exc))
        return _back(message)
    except twoway.Refused as exc:
        messages.error(request, str(exc))
        return _back(message)
    if moved is None:
        messages.success(
            request, "Moved. The server did not say where it put it: it shows after the next sync."
        )
    else:
        messages.success(request, f"Moved to {moved.folder.name}.")
    if not may_see_message(_viewer(request), message):
        return redirect("web:home")
    return _back(message)


@login_required
@require_POST
def message_delete(request: HttpRequest, pk: int) -> HttpResponse:
    message, copy = _copy_or_404(request, pk)
    try:
        trashed = twoway.delete(_viewer(request), copy)
    except twoway.Refused as exc:
        messages.error(request, str(exc))
        return _back(message)
    if trashed is not None:
        messages.success(request, f"Moved to {trashed.folder.name}.")
    else:
        messages.success(request, "Deleted for good from the server.")
    if not may_see_message(_viewer(request), message):
        return redirect("web:home")
    return _back(message)
