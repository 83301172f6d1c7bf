"""Connecting and describing mailboxes: the writers behind the command line (SPEC F1, F2).

Saving a configuration first tests it: the incoming server (login, folders) and, when one
is configured, the outgoing server (login, no mail sent). A failure comes back in words,
naming the side that failed, and nothing is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from crmail.mail.models import Message, ParseState
from crmail.mail.store import collect_blobs
from crmail.mailboxes import conversations, live_sync, usage
from crmail.mailboxes.connect import can, open_driver, smtp_client
from crmail.mailboxes.drivers.base import AuthFailed, CreatesFolders, DriverError, Sends
from crmail.mailboxes.folder_names import new_folder_path
from crmail.mailboxes.labels import sorting as labels_sorting
from crmail.mailboxes.labels import tasks as labels_tasks
from crmail.mailboxes.models import (
    AuthMethod,
    Folder,
    Location,
    Mailbox,
    Protocol,
    SentMessage,
    SyncState,
)
from crmail.mailboxes.sync import eta_seconds, resume_times
from crmail.mailboxes.tasks import is_interrupted
from crmail.people import ratelimit
from crmail.people.actions import Invalid, NotAllowed
from crmail.people.models import User


def _server_account(mailbox: Mailbox) -> str:
    """The account a connection test signs in to, as the sign-in limiter counts it."""
    return f"{mailbox.protocol}://{mailbox.login or mailbox.email}@{mailbox.host}:{mailbox.port}"


def test_connection(mailbox: Mailbox) -> None:
    """Log in to the incoming server and list its folders, then to the outgoing one.

    Each test is a password check on someone's mail server made from crmail's address, so
    it goes through the sign-in limiter (``people.ratelimit``): refused logins count per
    server account and per crmail user, and past the limit the test is refused unasked."""
    try:
        attempt = ratelimit.reserve(_server_account(mailbox), f"user:{mailbox.owner_id}")
    except ratelimit.SignInLocked as exc:
        raise Invalid(
            [
                {
                    "field": "incoming",
                    "message": "Too many refused sign-ins to this mail server from crmail; "
                    f"try again in {ratelimit.wait_words(exc.seconds)}.",
                }
            ]
        ) from None
    errors = []
    refused = False
    try:
        driver = open_driver(mailbox)
        try:
            driver.list_folders()
        finally:
            driver.close()
    except DriverError as exc:
        refused = isinstance(exc, AuthFailed)
        errors.append({"field": "incoming", "message": str(exc)})
    if mailbox.smtp_host:
        try:
            client = smtp_client(mailbox)
            client.connect()
            client.close()
        except DriverError as exc:
            refused = refused or isinstance(exc, AuthFailed)
            errors.append({"field": "outgoing", "message": str(exc)})
    if not refused:
        attempt.succeeded()  # only a refused login counts against the limit
    if errors:
        raise Invalid(errors)


# What a user may change on a saved mailbox; changing a server or credential field tests
# the connection again before saving.
EDITABLE_FIELDS = (
    "email",
    "host",
    "port",
    "security",
    "allow_self_signed",
    "login",
    "secret",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_same_credentials",
    "smtp_login",
    "smtp_secret",
    "display_name",
    "extra_from_addresses",
    "store_sent_on_server",
    "import_folders",
    "import_since",
    "keep_on_server",
    "customer_alerts",
    "deal_labels",
)
CONNECTION_FIELDS = frozenset(EDITABLE_FIELDS[: EDITABLE_FIELDS.index("smtp_secret") + 1])
FOLDER_ROLES = ("inbox", "sent", "drafts", "trash", "junk", "archive")


def mailboxes_for(user: User) -> QuerySet[Mailbox]:
    """The mailboxes ``user`` may look at and manage: their own; every one for admins."""
    rows = Mailbox.objects.select_related("owner")
    return rows if user.is_admin else rows.filter(owner=user)


def may_connect(user: User) -> bool:
    """True when ``user``'s profile allows connecting a mailbox (Mail Integration)."""
    return bool(user.is_admin or (user.profile and user.profile.mail_integration))


def is_locked_for(actor: User, owner: User) -> bool:
    """True when an administrator locked ``owner``'s mail configuration against ``actor``."""
    return not actor.is_admin and Mailbox.objects.filter(owner=owner, locked=True).exists()


def _check_may_change(actor: User, owner: User) -> None:
    if actor.pk != owner.pk and not actor.is_admin:
        raise NotAllowed("Only administrators change other users' mailboxes.")
    if is_locked_for(actor, owner):
        raise NotAllowed(
            "An administrator has locked this mail configuration: ask them to change it."
        )


def _clean(mailbox: Mailbox) -> None:
    try:
        mailbox.full_clean(exclude=["owner", "is_active"])
    except ValidationError as exc:
        raise Invalid(
            [{"field": f, "message": m} for f, ms in exc.message_dict.items() for m in ms]
        ) from None
    errors = []
    for address in mailbox.extra_from_addresses or []:
        try:
            validate_email(address)
        except ValidationError:
            errors.append(
                {"field": "extra_from_addresses", "message": f"{address!r} is not an address."}
            )
    if mailbox.protocol in (Protocol.IMAP, Protocol.POP3) and not mailbox.host:
        errors.append({"field": "host", "message": "Give the incoming server's name."})
    if mailbox.deal_labels and not labels_sorting.can_label(mailbox):
        errors.append(
            {
                "field": "deal_labels",
                "message": f"{mailbox.get_protocol_display()} mailboxes have no folders on the "
                "server to sort mail into: labels by deal state need IMAP or the Gmail API.",
            }
        )
    if errors:
        raise Invalid(errors)


def check_may_connect(actor: User, owner: User) -> None:
    """Refuse (``NotAllowed``) when ``actor`` may not connect a mailbox for ``owner``."""
    if actor.pk != owner.pk and not actor.is_admin:
        raise NotAllowed("Only administrators connect mailboxes for other users.")
    if not may_connect(owner):
        raise NotAllowed(
            f"{owner.email}'s profile does not allow connecting a mailbox (Mail Integration)."
        )
    _check_may_change(actor, owner)


def connect_mailbox(
    actor: User,
    owner: User,
    fields: dict[str, Any],
    *,
    test: bool = True,
    on_save: Callable[[], None] | None = None,
) -> Mailbox:
    """Save a tested mailbox for ``owner`` and make it the one that fetches.

    ``on_save`` runs in the transaction that saves it (``sharing.actions.connect_mailbox``
    sets who sees the mail there, so a mailbox never exists without its owner's choice).
    """
    check_may_connect(actor, owner)
    mailbox = Mailbox(owner=owner, **fields)
    _clean(mailbox)
    if test:
        test_connection(mailbox)
    with transaction.atomic():
        _stop_live(Mailbox.objects.filter(owner=owner, is_active=True))
        Mailbox.objects.filter(owner=owner, is_active=True).update(is_active=False)
        mailbox.is_active = True
        mailbox.save()
        if on_save is not None:
            on_save()
    return mailbox


def update_mailbox(
    actor: User,
    mailbox: Mailbox,
    fields: dict[str, Any],
    *,
    test: bool = True,
    remove_labels: bool = False,
) -> Mailbox:
    """Change ``mailbox``'s settings; a changed server or credential is tested first.

    An empty ``secret`` or ``smtp_secret`` keeps the stored one (forms never show them).
    Labels by deal state switched on sort the mail at once (a job); ``remove_labels`` with
    labels off takes them off the server, their mail back in the Inbox (a job).
    """
    _check_may_change(actor, mailbox.owner)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid([{"field": f, "message": "This field cannot be changed."} for f in unknown])
    if remove_labels and fields.get("deal_labels", mailbox.deal_labels):
        raise Invalid(
            [
                {
                    "field": "remove_labels",
                    "message": "Labels are removed when they are switched off: give "
                    "deal_labels false with it.",
                }
            ]
        )
    fields = {k: v for k, v in fields.items() if not (k.endswith("secret") and not v)}
    changed = {k for k, v in fields.items() if getattr(mailbox, k) != v}
    for key in changed:
        setattr(mailbox, key, fields[key])
    _clean(mailbox)
    if test and changed & CONNECTION_FIELDS:
        test_connection(mailbox)
    if changed:
        if changed & CONNECTION_FIELDS and mailbox.state in (
            SyncState.ERROR,
            SyncState.NEEDS_REAUTH,
        ):
            mailbox.state, mailbox.last_error, mailbox.last_error_kind = SyncState.NEW, "", ""
            changed |= {"state", "last_error", "last_error_kind"}
        with transaction.atomic():
            mailbox.save(update_fields=sorted(changed))
            if "customer_alerts" in changed and not mailbox.customer_alerts:
                _stop_live(Mailbox.objects.filter(pk=mailbox.pk))
            if "import_folders" in changed:
                wanted = set(mailbox.import_folders or [])
                for folder in mailbox.folders.all():
                    enabled = not wanted or folder.remote_id in wanted or folder.name in wanted
                    if folder.sync_enabled != enabled:
                        folder.sync_enabled = enabled
                        folder.save(update_fields=["sync_enabled"])
            if "deal_labels" in changed and labels_sorting.is_on(mailbox):
                transaction.on_commit(partial(labels_tasks.request_sort, mailbox.pk))
    if remove_labels:
        transaction.on_commit(partial(labels_tasks.request_removal, mailbox.pk))
    return mailbox


def activate_mailbox(actor: User, mailbox: Mailbox) -> Mailbox:
    """Make ``mailbox`` the one that fetches for its owner (one active mailbox per user)."""
    _check_may_change(actor, mailbox.owner)
    if not may_connect(mailbox.owner):
        raise NotAllowed(
            f"{mailbox.owner.email}'s profile does not allow connecting a mailbox "
            "(Mail Integration)."
        )
    with transaction.atomic():
        others = Mailbox.objects.filter(owner=mailbox.owner, is_active=True).exclude(pk=mailbox.pk)
        _stop_live(others)
        others.update(is_active=False, state=SyncState.DISABLED)
        mailbox.is_active = True
        if mailbox.state == SyncState.DISABLED:
            mailbox.state = SyncState.NEW if mailbox.last_sync_at is None else SyncState.COMPLETED
        mailbox.save(update_fields=["is_active", "state"])
    return mailbox


def deactivate_mailbox(
    actor: User, mailbox: Mailbox, *, keep_mail: bool, remove_labels: bool = False
) -> int:
    """Stop fetching ``mailbox``; with ``keep_mail=False`` also forget what it synced; with
    ``remove_labels`` (labels by deal state on) switch the labels off and take them off
    the server, their mail back in the Inbox (a job, which reads the server's folders, not
    what crmail kept). Seed 003: deactivating, one chooses whether the labels stay.

    Returns the number of messages removed. Mail that another mailbox also holds, or that
    was sent from crmail, stays: only this mailbox's copies go.
    """
    _check_may_change(actor, mailbox.owner)
    removed = 0
    with transaction.atomic():
        mailbox.is_active = False
        mailbox.state = SyncState.DISABLED
        changed = ["is_active", "state"]
        if remove_labels and mailbox.deal_labels:
            mailbox.deal_labels = False
            changed.append("deal_labels")
            transaction.on_commit(partial(labels_tasks.request_removal, mailbox.pk))
        mailbox.save(update_fields=changed)
        _stop_live(Mailbox.objects.filter(pk=mailbox.pk))
        if not keep_mail:
            removed = discard_mail(mailbox)
    return removed


def _stop_live(mailboxes: QuerySet[Mailbox]) -> None:
    """Mail of these mailboxes that crmail keeps no copy of leaves every record at once: the
    live lists ask active mailboxes only, and what the sync kept of their Inbox (Mail ID,
    From, received time; ``LiveMail``) goes, with its notifications, and the cursor with
    it, so switching back on starts from the Inbox as it is then."""
    ids = list(mailboxes.filter(keeps_copy=False).values_list("pk", flat=True))
    if ids:
        live_sync.forget(ids)


def discard_mail(mailbox: Mailbox) -> int:
    """Delete ``mailbox``'s locations and every message left with no location nor send."""
    message_ids = set(Location.objects.filter(mailbox=mailbox).values_list("message_id", flat=True))
    digests = list(Message.objects.filter(pk__in=message_ids).values_list("sha256", flat=True))
    # Once the messages are gone, their bytes go from the blob store too.
    transaction.on_commit(lambda: collect_blobs(digests))
    with usage.removing(Location.objects.filter(mailbox=mailbox)):
        Location.objects.filter(mailbox=mailbox).delete()
    conversations.refresh_folders(mailbox.folders.values_list("pk", flat=True))
    Folder.objects.filter(mailbox=mailbox).update(cursor={}, last_synced_at=None)
    Mailbox.objects.filter(pk=mailbox.pk).update(last_sync_at=None, progress_done=0)
    ids = list(message_ids)
    removed = 0
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        orphans = (
            Message.objects.filter(pk__in=chunk)
            .exclude(pk__in=Location.objects.filter(message_id__in=chunk).values("message_id"))
            .exclude(pk__in=SentMessage.objects.filter(message_id__in=chunk).values("message_id"))
        )
        removed += orphans.delete()[1].get("mail.Message", 0)
    return removed


def set_locked(actor: User, owner: User, locked: bool) -> int:
    """Lock (or unlock) ``owner``'s mail configuration; administrators only."""
    if not actor.is_admin:
        raise NotAllowed("Only administrators lock mail configurations.")
    return Mailbox.objects.filter(owner=owner).update(locked=locked)


def map_folder(actor: User, folder: Folder, role: str) -> Folder:
    """Give ``folder`` one of crmail's roles (or none), for servers that do not say.

    A role belongs to one folder per mailbox: the folder that had it loses it.
    """
    _check_may_change(actor, folder.mailbox.owner)
    if role and role not in FOLDER_ROLES:
        raise Invalid(
            [{"field": "role", "message": f"Choose one of: {', '.join(FOLDER_ROLES)}, or none."}]
        )
    with transaction.atomic():
        if role:
            Folder.objects.filter(mailbox=folder.mailbox, role=role).exclude(pk=folder.pk).update(
                role="", role_from_server=False
            )
        folder.role, folder.role_from_server = role, False
        folder.save(update_fields=["role", "role_from_server"])
    return folder


SENT_NAME = "Sent"


def needs_sent_folder(mailbox: Mailbox) -> bool:
    """True when crmail knows the server's folders, could create one (IMAP), and none is
    the Sent folder; never for a mailbox that sends through its provider's API (Gmail,
    Graph), whose provider files the sent copy itself."""
    if can(mailbox, Sends) and not mailbox.smtp_host:
        return False
    folders = mailbox.folders.filter(exists_on_server=True)
    return (
        can(mailbox, CreatesFolders)
        and folders.exists()
        and not folders.filter(role="sent").exists()
    )


def create_sent_folder(actor: User, mailbox: Mailbox) -> tuple[Folder, bool]:
    """Give an IMAP mailbox without one a Sent folder: the server's own when it has one
    after all, else one created on the server (CREATE), then marked with the Sent role.
    Returns the folder and whether it was created on the server."""
    _check_may_change(actor, mailbox.owner)
    if not can(mailbox, CreatesFolders):
        raise Invalid(
            [
                {
                    "field": "protocol",
                    "message": f"{mailbox.get_protocol_display()} mailboxes have no folders "
                    "on the server: only IMAP mailboxes have a Sent folder.",
                }
            ]
        )
    known = mailbox.folders.filter(role="sent", exists_on_server=True).first()
    if known is not None:
        raise Invalid(
            [{"field": "role", "message": f"{known.name} is already this mailbox's Sent folder."}]
        )
    driver = open_driver(mailbox)
    try:
        remote_folders = driver.list_folders()
        remote = next((f for f in remote_folders if f.role == "sent"), None)
        created = remote is None
        if remote is None:
            if not isinstance(driver, CreatesFolders):
                raise DriverError("The server cannot create folders.", kind="unsupported")
            remote = driver.create_folder(new_folder_path(remote_folders, SENT_NAME), role="sent")
    finally:
        driver.close()
    wanted = set(mailbox.import_folders or [])
    with transaction.atomic():
        folder, _ = Folder.objects.update_or_create(
            mailbox=mailbox,
            remote_id=remote.remote_id,
            defaults={
                "name": remote.name,
                "selectable": remote.selectable,
                "exists_on_server": True,
            },
            create_defaults={
                "name": remote.name,
                "selectable": remote.selectable,
                "sync_enabled": not wanted or remote.remote_id in wanted or remote.name in wanted,
            },
        )
        map_folder(actor, folder, "sent")
    return folder, created


def set_folder_sync(actor: User, folder: Folder, enabled: bool) -> Folder:
    """Sync ``folder`` or leave it out (the import filter's folders, after connecting)."""
    _check_may_change(actor, folder.mailbox.owner)
    folder.sync_enabled = enabled
    folder.save(update_fields=["sync_enabled"])
    return folder


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


# Shown instead of "syncing" once the process that was syncing is gone (killed, crashed)
# and its lease has lapsed; not stored: the next sync carries on and sets the state.
INTERRUPTED = "interrupted"
INTERRUPTED_LABEL = "Interrupted: the sync stopped before it finished"
# Paused because the provider asked crmail to slow down (not for a day's transfer cap).
PAUSED_ON_REQUEST_LABEL = "Paused at the provider's request"


def state_label(mailbox: Mailbox) -> str:
    """The mailbox's state in words (a pause the provider asked for is no daily limit)."""
    if mailbox.state == SyncState.PAUSED and mailbox.pk in resume_times([mailbox.pk]):
        return PAUSED_ON_REQUEST_LABEL
    return str(mailbox.get_state_display())


def mailbox_status(mailbox: Mailbox) -> MailboxStatus:
    """What the status line, page and API show: progress while syncing, counts after."""
    message_ids = Location.objects.filter(mailbox=mailbox).values("message_id")
    totals = Message.objects.filter(pk__in=message_ids).aggregate(
        count=Count("pk"),
        size=Sum("size"),
        failed=Count("pk", filter=Q(parse_state=ParseState.FAILED)),
        partial=Count("pk", filter=Q(parse_state=ParseState.PARTIAL)),
    )
    state, label = mailbox.state, state_label(mailbox)
    if is_interrupted(mailbox):
        state, label = INTERRUPTED, INTERRUPTED_LABEL
    rate = None
    if state == SyncState.SYNCING and mailbox.sync_started_at:
        elapsed = (timezone.now() - mailbox.sync_started_at).total_seconds()
        rate = mailbox.progress_done / elapsed if elapsed > 0 else None
    return MailboxStatus(
        id=mailbox.pk,
        email=mailbox.email,
        protocol=mailbox.protocol,
        active=mailbox.is_active,
        state=state,
        state_label=label,
        done=mailbox.progress_done,
        total=mailbox.progress_total,
        bytes=mailbox.progress_bytes,
        rate_per_second=rate,
        eta_seconds=eta_seconds(mailbox) if state == SyncState.SYNCING else None,
        last_sync_at=mailbox.last_sync_at,
        last_error=mailbox.last_error,
        messages_stored=totals["count"] or 0,
        bytes_stored=totals["size"] or 0,
        parse_failures=totals["failed"] or 0,
        parsed_with_fallbacks=totals["partial"] or 0,
        folders=mailbox.folders.count(),
    )


def reauthorize_mailbox(actor: User, mailbox: Mailbox, tokens: Any) -> Mailbox:
    """Put the tokens of a new OAuth sign-in (an ``oauth.TokenSet``) on ``mailbox``.

    A mailbox that needed re-authentication becomes ready to sync again.
    """
    from crmail.mailboxes.oauth import store_tokens

    _check_may_change(actor, mailbox.owner)
    store_tokens(mailbox, tokens)
    return mailbox


# The provider preset of each API protocol.
API_PRESETS = {Protocol.GMAIL: "gmail", Protocol.GRAPH: "outlook"}


def api_mailbox_fields(protocol: str, refresh_token: str, *, keeps_copy: bool) -> dict[str, Any]:
    """A Gmail API or Microsoft Graph mailbox's sign-in from a refresh token obtained
    elsewhere (moving from another tool), proven by one refresh at the provider, which
    also gives its first access token. Raises ``DriverError`` in words (``AuthFailed``
    for a refused token, ``OAuthNotConfigured`` when the server has no client for it)."""
    from crmail.mailboxes import oauth

    preset = API_PRESETS[Protocol(protocol)]
    tokens = oauth.redeem_refresh_token(preset, refresh_token, oauth.API_RESOURCE)
    return {
        "provider": preset,
        "protocol": protocol,
        "host": "",
        "port": None,
        "smtp_host": "",
        "smtp_port": None,
        "auth_method": AuthMethod.OAUTH2,
        "secret": tokens.refresh_token,
        "access_token": tokens.access_token,
        "access_token_expires_at": tokens.expires_at,
        "access_token_resource": tokens.resource,
        "keeps_copy": keeps_copy,
    }
