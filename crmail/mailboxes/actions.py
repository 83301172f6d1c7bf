"""Connecting and describing mailboxes: the writers behind the command line (SPEC F1, F2).

Saving a configuration first tests it: the incoming server (login, folders) and, when one
is configured, the outgoing server (login, no mail sent). A failure comes back in words,
naming the side that failed, and nothing is saved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from crmail.mail.models import Message, ParseState
from crmail.mailboxes.connect import open_driver, smtp_client
from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.models import Location, Mailbox, SyncState
from crmail.mailboxes.sync import eta_seconds
from crmail.people.actions import Invalid, NotAllowed
from crmail.people.models import User


def test_connection(mailbox: Mailbox) -> None:
    """Log in to the incoming server and list its folders, then to the outgoing one."""
    errors = []
    try:
        driver = open_driver(mailbox)
        try:
            driver.list_folders()
        finally:
            driver.close()
    except DriverError as exc:
        errors.append({"field": "incoming", "message": str(exc)})
    if mailbox.smtp_host:
        try:
            client = smtp_client(mailbox)
            client.connect()
            client.close()
        except DriverError as exc:
            errors.append({"field": "outgoing", "message": str(exc)})
    if errors:
        raise Invalid(errors)


def connect_mailbox(
    actor: User, owner: User, fields: dict[str, Any], *, test: bool = True
) -> Mailbox:
    """Save a tested mailbox for ``owner`` and make it the one that fetches."""
    if actor.pk != owner.pk and not actor.is_admin:
        raise NotAllowed("Only administrators connect mailboxes for other users.")
    if not (owner.is_admin or (owner.profile and owner.profile.mail_integration)):
        raise NotAllowed(
            f"{owner.email}'s profile does not allow connecting a mailbox (Mail Integration)."
        )
    if not actor.is_admin and Mailbox.objects.filter(owner=owner, locked=True).exists():
        raise NotAllowed("An administrator has locked this mail configuration.")
    mailbox = Mailbox(owner=owner, **fields)
    try:
        mailbox.full_clean(exclude=["owner", "is_active"])
    except ValidationError as exc:
        raise Invalid(
            [{"field": f, "message": m} for f, ms in exc.message_dict.items() for m in ms]
        ) from None
    if test:
        test_connection(mailbox)
    with transaction.atomic():
        Mailbox.objects.filter(owner=owner, is_active=True).update(is_active=False)
        mailbox.is_active = True
        mailbox.save()
    return mailbox


@dataclass
class MailboxStatus:
    id: int
    email: str
    protocol: str
    active: bool
    state: str
    state_label: str
    done: int
    total: int
    bytes: int
    rate_per_second: float | None
    eta_seconds: float | None
    last_sync_at: datetime | None
    last_error: str
    messages_stored: int
    bytes_stored: int
    parse_failures: int
    parsed_with_fallbacks: int
    folders: int

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_sync_at"] = self.last_sync_at.isoformat() if self.last_sync_at else None
        return data


def mailbox_status(mailbox: Mailbox) -> MailboxStatus:
    """What the status line, page and API show: progress while syncing, counts after."""
    message_ids = Location.objects.filter(mailbox=mailbox).values("message_id")
    totals = Message.objects.filter(pk__in=message_ids).aggregate(
        count=Count("pk"),
        size=Sum("size"),
        failed=Count("pk", filter=Q(parse_state=ParseState.FAILED)),
        partial=Count("pk", filter=Q(parse_state=ParseState.PARTIAL)),
    )
    rate = None
    if mailbox.state == SyncState.SYNCING and mailbox.sync_started_at:
        elapsed = (timezone.now() - mailbox.sync_started_at).total_seconds()
        rate = mailbox.progress_done / elapsed if elapsed > 0 else None
    return MailboxStatus(
        id=mailbox.pk,
        email=mailbox.email,
        protocol=mailbox.protocol,
        active=mailbox.is_active,
        state=mailbox.state,
        state_label=mailbox.get_state_display(),
        done=mailbox.progress_done,
        total=mailbox.progress_total,
        bytes=mailbox.progress_bytes,
        rate_per_second=rate,
        eta_seconds=eta_seconds(mailbox),
        last_sync_at=mailbox.last_sync_at,
        last_error=mailbox.last_error,
        messages_stored=totals["count"] or 0,
        bytes_stored=totals["size"] or 0,
        parse_failures=totals["failed"] or 0,
        parsed_with_fallbacks=totals["partial"] or 0,
        folders=mailbox.folders.count(),
    )
