"""Departed users (SPEC F12): administrators list deactivated users and back up their mail.

Deactivating a user takes their synced mail off the records' Emails lists
(``sharing.visibility``); reactivating brings it back. Mail sent from crmail stays. The
backup is the user's whole mail as one mbox file (``mail.mbox``), streamed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from crmail.mail.downloads import mbox_download
from crmail.mailboxes.models import Location, SentMessage
from crmail.people.models import User
from crmail.sharing import actions
from crmail.sharing.models import MailBackup, backups_keeping_mail
from crmail.web.views.settings import admin_required

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Departed:
    """A deactivated user and what their mail amounts to."""

    user: User
    mailboxes: int
    messages: int  # distinct messages lying in their mailboxes
    hidden: int  # of those, the ones not sent from crmail: synced mail, now off the lists
    without_body: int  # of those, the ones whose body waits on the mail server (storage full)
    sent: int  # messages they sent from crmail, still shown on records
    deactivated_at: datetime | None
    backup: MailBackup | None  # the latest taken since deactivation: their mail stays

    @property
    def hidden_now(self) -> int:
        """Synced messages off the lists now: none once a backup was taken."""
        return 0 if self.backup else self.hidden


def departed_users() -> list[Departed]:
    """Every deactivated user, most recently deactivated first, with their mail counts
    (four queries whatever the number of users or messages)."""
    users = list(
        User.objects.filter(is_active=False)
        .annotate(mailbox_count=Count("mailboxes", distinct=True))
        .order_by("-deactivated_at", "name", "email")
    )
    ids = [u.pk for u in users]
    sent_from_crmail = Exists(SentMessage.objects.filter(message_id=OuterRef("message_id")))
    in_mailboxes = {
        row["mailbox__owner_id"]: row
        for row in Location.objects.filter(mailbox__owner_id__in=ids)
        .values("mailbox__owner_id")
        .annotate(
            messages=Count("message_id", distinct=True),
            hidden=Count("message_id", distinct=True, filter=~Q(sent_from_crmail)),
            without_body=Count(
                "message_id", distinct=True, filter=Q(message__waiting_body__isnull=False)
            ),
        )
        .order_by()
    }
    sent = dict(
        SentMessage.objects.filter(sender_id__in=ids)
        .values("sender_id")
        .annotate(n=Count("message_id", distinct=True))
        .order_by()
        .values_list("sender_id", "n")
    )
    backups: dict[int, MailBackup] = {}
    kept = backups_keeping_mail().filter(user_id__in=ids).select_related("taken_by")
    for backup in kept:
        backups.setdefault(backup.user_id, backup)  # newest first (the model's ordering)
    rows = []
    for user in users:
        backup = backups.get(user.pk)
        counts = in_mailboxes.get(user.pk, {})
        rows.append(
            Departed(
                user=user,
                mailboxes=user.mailbox_count,
                messages=counts.get("messages", 0),
                hidden=counts.get("hidden", 0),
                without_body=counts.get("without_body", 0),
                sent=sent.get(user.pk, 0),
                deactivated_at=user.deactivated_at,
                backup=backup,
            )
        )
    return rows


@admin_required
@require_safe
def departed(request: HttpRequest) -> HttpResponse:
    return render(request, "web/settings/departed.html", {"departed": departed_users()})


def mbox_response(actor: User, user: User) -> StreamingHttpResponse:
    """``user``'s mail as an mbox download taken by ``actor`` (``sharing.actions.take_backup``:
    recorded once the whole file has been sent), streamed a batch of messages at a time."""
    return mbox_download(actions.take_backup(actor, user), user)


@admin_required
@require_safe
def backup(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The mail backup of any user, active or not (administrators only)."""
    target = get_object_or_404(User, pk=pk)
    # Ids only: no addresses in the log (STYLE).
    log.info("mail backup of user %s downloaded by user %s", target.pk, request.user.pk)
    return mbox_response(request.user, target)  # type: ignore[arg-type]
