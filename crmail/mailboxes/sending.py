"""Sending mail from crmail (SPEC F3): through the user's SMTP server (or the mailbox's
mail API), stored like synced mail.

The message is built with checked headers, sent, stored by content and parsed, and recorded
as sent from crmail (always shared, SPEC F5). Where the mailbox asks for it and the provider
does not file sent mail by itself, a copy is appended to the server's Sent folder; a
failure there does not unsend anything: it is recorded beside the sent message.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Protocol

from django.db import transaction

from crmail.domains import signing
from crmail.events import outbox
from crmail.events.kinds import MessageSent
from crmail.linking.links import link_sent
from crmail.mail.compose import ComposeError, Draft, build_message, no_newlines
from crmail.mail.ingest import parse_stored
from crmail.mail.store import store_raw
from crmail.mailboxes.connect import can, open_driver, smtp_client
from crmail.mailboxes.drivers.base import (
    Appends,
    AuthFailed,
    ConnectFailed,
    DriverError,
    RemoteFolder,
    Sends,
    Throttled,
)
from crmail.mailboxes.models import Folder, Location, Mailbox, SentMessage
from crmail.mailboxes.providers import preset
from crmail.orgaddresses import queries as org_addresses
from crmail.orgaddresses.models import OrganisationAddress
from crmail.people.models import User

log = logging.getLogger(__name__)


class SendingNotPossible(Exception):
    """Nothing was sent; the message says why in words."""


class Tracking(Protocol):
    """What Email insights (SPEC F9, ``crmail.insights.tracking``) adds to sending one
    message: the copy its recipients get (None: the message itself), and its record,
    written in the transaction that stores the message. crmail stores the message as
    built, so opening it in crmail fires no pixel and its links go where they say."""

    def recipients_copy(self, msg: EmailMessage) -> EmailMessage | None: ...

    def record(self, sent: SentMessage) -> None: ...


def from_addresses(mailbox: Mailbox) -> list[str]:
    """The addresses ``mailbox`` may send as: its own first, then the extra ones."""
    addresses = [mailbox.email.lower()]
    for extra in mailbox.extra_from_addresses or []:
        if extra and extra.lower() not in addresses:
            addresses.append(extra.lower())
    return addresses


DEFAULT_MESSAGE_LIMIT = 25 * 1024 * 1024


def message_limit(mailbox: Mailbox) -> int:
    """The most a message's attachments may weigh: the provider's limit, else 25 MB."""
    return preset(mailbox.provider).max_message_bytes or DEFAULT_MESSAGE_LIMIT


def sender_name(mailbox: Mailbox, user: User) -> str:
    """The name mail from ``mailbox`` carries: the mailbox's, else its user's."""
    return mailbox.display_name or user.name


def send_message(
    user: User,
    draft: Draft,
    *,
    mailbox: Mailbox | None = None,
    record_module: str = "",
    record_id: int | None = None,
    tracking: Tracking | None = None,
) -> SentMessage:
    """Send ``draft`` as ``user`` through their active mailbox (or ``mailbox``, their own);
    with ``tracking``, the recipients get its copy of the message."""
    if mailbox is None:
        mailbox = Mailbox.objects.filter(owner=user, is_active=True).first()
    if mailbox is None or mailbox.owner_id != user.pk:
        raise SendingNotPossible("Connect a mailbox before sending mail from crmail.")
    if not sends_itself(mailbox) and not mailbox.smtp_host:
        raise SendingNotPossible(
            f"The mailbox {mailbox.email} has no outgoing (SMTP) server: add one to send mail."
        )
    no_newlines("from", draft.sender)  # refused as such, not as an unknown address
    organisation = _organisation_sender(user, mailbox, draft)
    if organisation is not None:
        draft.sender = organisation.address
    if not draft.sender_name:
        draft.sender_name = (organisation.name if organisation else "") or sender_name(
            mailbox, user
        )
    msg, recipients = build_message(draft)
    # DKIM-signed when the From domain is authenticated (SPEC F10): these bytes go out,
    # through SMTP or the mailbox's API alike, and these are stored.
    raw = signing.sign(draft.sender, msg.as_bytes())
    theirs = tracking.recipients_copy(msg) if tracking is not None else None
    try:
        _deliver(
            mailbox,
            draft.sender,
            recipients,
            raw if theirs is None else signing.sign(draft.sender, theirs.as_bytes()),
        )
    except DriverError as exc:
        raise _refused_as(exc, mailbox, organisation) from None
    with transaction.atomic():
        message = store_raw(raw)
        sent = SentMessage.objects.create(
            message=message,
            sender=user,
            mailbox=mailbox,
            from_address=draft.sender.lower(),
            recipients=recipients,
            record_module=record_module,
            record_id=record_id,
        )
        outbox.record(
            MessageSent(
                message_id=message.pk,
                sender_id=user.pk,
                mailbox_id=mailbox.pk if mailbox else None,
                record_module=record_module or "",
                record_id=record_id,
            )
        )
        if tracking is not None:
            tracking.record(sent)
    parse_stored([message])
    # On the record it was sent from, and on every lead and contact it was sent to.
    link_sent(message, record_module, record_id, user)
    if _wants_sent_copy(mailbox):
        sent.sent_copy_error = _append_to_sent(mailbox, message.pk, raw)
        if sent.sent_copy_error:
            sent.save(update_fields=["sent_copy_error"])
    return sent


def _organisation_sender(user: User, mailbox: Mailbox, draft: Draft) -> OrganisationAddress | None:
    """The organisation address ``draft`` is sent as (SPEC F16), None for one of the
    mailbox's own; ``ComposeError`` in words when From or Reply-To is neither the
    mailbox's nor an organisation address ``user`` may use."""
    own = from_addresses(mailbox)
    organisation = None
    if draft.sender.strip().lower() not in own:
        organisation = org_addresses.usable(user, draft.sender)
        if organisation is None:
            raise ComposeError(
                "from",
                org_addresses.refusal(user, draft.sender)
                or f"{draft.sender} is not an address this mailbox sends as.",
            )
    if draft.reply_to:
        no_newlines("reply_to", draft.reply_to)
        wanted = draft.reply_to.strip().lower()
        if wanted not in own and org_addresses.usable(user, wanted) is None:
            raise ComposeError(
                "reply_to",
                org_addresses.refusal(user, wanted)
                or f"{draft.reply_to} is neither an address of this mailbox nor an "
                "organisation address you may use.",
            )
    return organisation


def _refused_as(
    exc: DriverError, mailbox: Mailbox, organisation: OrganisationAddress | None
) -> DriverError:
    """``exc``, saying in words that the server may refuse to send as an organisation
    address the mailbox does not own (nothing was sent)."""
    if organisation is None or isinstance(exc, AuthFailed | ConnectFailed | Throttled):
        return exc
    return DriverError(
        f"{exc} Sending as the organisation address {organisation.address}: mail servers "
        f"often refuse a From address the mailbox does not own. Let {mailbox.email} send "
        f"as {organisation.address} at its provider (a send-as or alias address), or "
        "choose your own address as From.",
        kind=exc.kind,
    )


def sends_itself(mailbox: Mailbox) -> bool:
    """True when ``mailbox``'s own driver hands mail over for delivery (a mail API such as
    Microsoft Graph's ``sendMail``), which also files the copy in Sent: no SMTP server and
    no copy appended by crmail."""
    return can(mailbox, Sends)


def _deliver(mailbox: Mailbox, sender: str, recipients: list[str], raw: bytes) -> None:
    """Hand ``raw`` over for delivery: through the mailbox's API, else its SMTP server."""
    if not sends_itself(mailbox):
        with smtp_client(mailbox) as client:
            client.send(sender, recipients, raw)
        return
    driver = open_driver(mailbox)
    try:
        if not isinstance(driver, Sends):  # pragma: no cover (``can`` said it does)
            raise SendingNotPossible(f"The mailbox {mailbox.email} cannot send mail.")
        driver.send(sender, recipients, raw)
    finally:
        driver.close()


def _wants_sent_copy(mailbox: Mailbox) -> bool:
    """Store a copy on the server when asked, where the driver can (IMAP), unless the
    provider files it itself (its SMTP server, or its API that sent the message)."""
    return (
        mailbox.store_sent_on_server
        and can(mailbox, Appends)
        and not sends_itself(mailbox)
        and not preset(mailbox.provider).sent_copy_by_smtp
    )


def _append_to_sent(mailbox: Mailbox, message_pk: int, raw: bytes) -> str:
    """APPEND to the Sent folder; "" when done, else the reason in words."""
    try:
        driver = open_driver(mailbox)
    except DriverError as exc:
        return f"The copy for the Sent folder could not be stored: {exc}"
    try:
        if not isinstance(driver, Appends):
            return "The copy for the Sent folder could not be stored: the server takes none."
        folder = Folder.objects.filter(mailbox=mailbox, role="sent").first()
        if folder is None:
            remote = next((f for f in driver.list_folders() if f.role == "sent"), None)
            if remote is None:
                return (
                    "The server has no Sent folder: create one (or choose one) on the "
                    "mailbox's page to keep copies there."
                )
            folder, _ = Folder.objects.get_or_create(
                mailbox=mailbox,
                remote_id=remote.remote_id,
                defaults={"name": remote.name, "role": "sent", "role_from_server": True},
            )
        uid = driver.append(RemoteFolder(folder.remote_id, folder.name, "sent"), raw, {"seen"})
        if uid is not None:
            Location.objects.get_or_create(
                folder=folder,
                remote_id=uid,
                defaults={
                    "mailbox": mailbox,
                    "message_id": message_pk,
                    "uid": int(uid),
                    "seen": True,
                },
            )
        return ""
    except DriverError as exc:
        log.warning("storing a sent copy failed for mailbox %s: %s", mailbox.pk, exc.kind)
        return f"The copy for the Sent folder could not be stored: {exc}"
    finally:
        driver.close()


def sent_copy_outcome(sent: SentMessage) -> tuple[bool, str]:
    """Whether crmail put a copy of ``sent`` in the server's Sent folder; if not, why, in words."""
    mailbox = sent.mailbox
    if sent.sent_copy_error:
        return False, sent.sent_copy_error
    if mailbox is None:
        return False, "The mailbox it was sent from is no longer connected."
    if _wants_sent_copy(mailbox):
        return True, ""
    if sends_itself(mailbox):
        return False, (
            f"{mailbox.get_protocol_display()} files sent mail in the Sent folder itself: "
            "crmail added no second copy."
        )
    if not mailbox.store_sent_on_server:
        return False, "Storing sent mail on the server is off for this mailbox."
    if not can(mailbox, Appends):
        return False, (
            f"{mailbox.get_protocol_display()} mailboxes have no Sent folder crmail can write to."
        )
    return False, (
        f"{preset(mailbox.provider).name} files sent mail in its Sent folder itself: "
        "crmail added no second copy."
    )
