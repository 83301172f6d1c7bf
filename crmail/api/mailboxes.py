"""``/mailboxes``: connecting, describing and syncing mailboxes (SPEC F1, F2).

A user sees and manages their own mailboxes; administrators see every one (settings,
status, folders and counts: what keeps mail flowing) but list the messages of their own
only (``sharing.visibility.may_list_mailbox``, decision 020). Anybody else's mailbox
answers 404 as if it did not exist. Every change goes through
``crmail.mailboxes.actions`` (which tests a connection before saving it, and refuses
changes to a locked configuration or without the Mail Integration permission: 403);
this module only shapes the input. Passwords are write-only: answers say whether one is
stored, never what it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from ninja import Query, Router
from ninja.errors import HttpError

from crmail.api import live_mail, records
from crmail.api.auth import current_user
from crmail.api.errors import Forbidden, Invalid
from crmail.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    DeactivatedOut,
    DeactivateIn,
    FolderOut,
    FolderPatch,
    Id,
    LabelMoveOut,
    ListParams,
    LiveMessageOut,
    LockIn,
    MailboxFilters,
    MailboxIn,
    MailboxOut,
    MailboxSettings,
    MailboxStatusOut,
    MessageFilters,
    MessageSummaryOut,
    Page,
    PresetOut,
    errors_doc,
)
from crmail.mail import tags
from crmail.mail.models import Message
from crmail.mailboxes import actions, tasks
from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.labels import sorting as labels_sorting
from crmail.mailboxes.labels import tasks as labels_tasks
from crmail.mailboxes.models import Folder, LabelMove, Location, Mailbox
from crmail.mailboxes.oauth import OAuthNotConfigured
from crmail.mailboxes.oauth import provider as oauth_provider
from crmail.mailboxes.providers import CUSTOM, PRESETS, Preset
from crmail.people import actions as people_actions
from crmail.people.models import User
from crmail.sharing import actions as sharing_actions
from crmail.sharing import queries as sharing_queries
from crmail.sharing.visibility import mailbox_copies, may_list_mailbox

router = Router(tags=["Mailboxes"])

# The API's names for the model's credential fields, both ways.
SECRETS = {"password": "secret", "smtp_password": "smtp_secret"}
API_NAMES = {model: api for api, model in SECRETS.items()}
TEXT_SETTINGS = {
    "email",
    "host",
    "login",
    "secret",
    "smtp_host",
    "smtp_login",
    "smtp_secret",
    "display_name",
}
LIST_SETTINGS = {"extra_from_addresses", "import_folders"}
SERVERS = {"incoming": "Incoming server", "outgoing": "Outgoing (SMTP) server"}
FLAG_FIELDS = ("seen", "flagged", "answered", "draft", "deleted")
ACCEPTED = errors_doc(401, 404, 409, 422)


@contextmanager
def action_errors() -> Iterator[None]:
    """The mailbox actions' refusals as API answers: 422 naming fields, 403 in words."""
    try:
        yield
    except people_actions.Invalid as exc:
        raise Invalid([api_error(e["field"], e["message"]) for e in exc.errors]) from None
    except people_actions.NotAllowed as exc:
        raise Forbidden(str(exc)) from None


def api_error(field: str | None, message: str) -> dict[str, Any]:
    """An action's error as the API names it; a failed connection test says which server."""
    if field in SERVERS:
        message = f"{SERVERS[field]}: {message}"
    elif field in ("__all__", ""):
        field = None
    return {"field": API_NAMES.get(field or "", field), "message": message}


def mailboxes(user: User) -> QuerySet[Mailbox]:
    return actions.mailboxes_for(user)


def mailbox_or_404(request: HttpRequest, pk: int) -> Mailbox:
    """The mailbox when the caller owns it or is an administrator; 404 otherwise."""
    return records.get_or_404(mailboxes(current_user(request)), pk)


def model_fields(settings: dict[str, Any]) -> dict[str, Any]:
    """API settings as the model names them: credentials renamed, null as empty."""
    fields: dict[str, Any] = {}
    for name, value in settings.items():
        name = SECRETS.get(name, name)
        if value is None and name in TEXT_SETTINGS:
            value = ""
        elif value is None and name in LIST_SETTINGS:
            value = []
        elif isinstance(value, str) and name != "secret" and name != "smtp_secret":
            value = value.strip()
        fields[name] = value
    return fields


def with_preset(fields: dict[str, Any]) -> dict[str, Any]:
    """Servers the provider preset knows, where the request names none."""
    preset = PRESETS.get(fields.get("provider", ""))
    if preset is None:
        return fields
    incoming = preset.imap if fields.get("protocol") == "imap" else preset.pop3
    if incoming and not fields.get("host"):
        host, port, security = incoming
        fields["host"] = host
        fields.setdefault("port", port)
        fields.setdefault("security", security)
    if preset.smtp and not fields.get("smtp_host"):
        host, port, security = preset.smtp
        fields["smtp_host"] = host
        fields.setdefault("smtp_port", port)
        fields.setdefault("smtp_security", security)
    return fields


# ----------------------------------------------------------------------------- reads


@router.get(
    "", response={200: Page[MailboxOut]}, openapi_extra=READ_ERRORS, summary="List mailboxes"
)
def list_mailboxes(request: HttpRequest, filters: Query[MailboxFilters]) -> dict:
    """Your mailboxes (every user's for administrators), the active one marked."""
    qs = mailboxes(current_user(request))
    if filters.owner is not None:
        qs = qs.filter(owner_id=filters.owner)
    return records.page(qs.order_by("owner__name", "owner__email", "email", "pk"), filters)


def _server(server: tuple[str, int, str] | None) -> dict[str, Any] | None:
    return None if server is None else {"host": server[0], "port": server[1], "security": server[2]}


def _oauth_configured(preset: Preset) -> bool:
    if preset is CUSTOM:
        return False
    try:
        oauth_provider(preset.key)
    except OAuthNotConfigured:
        return False
    return True


@router.get(
    "/presets",
    response={200: list[PresetOut]},
    openapi_extra=errors_doc(401),
    summary="List provider presets",
)
def list_presets(request: HttpRequest) -> list[dict[str, Any]]:
    """Server details of known providers, then "custom" (give the servers yourself)."""
    return [
        {
            "key": p.key,
            "name": p.name,
            "imap": _server(p.imap),
            "pop3": _server(p.pop3),
            "smtp": _server(p.smtp),
            "app_password_hint": p.app_password_hint if p.app_password_with_2fa else None,
            "oauth_configured": _oauth_configured(p),
            "sent_copy_by_smtp": p.sent_copy_by_smtp,
        }
        for p in [*PRESETS.values(), CUSTOM]
    ]


@router.get(
    "/{id}", response={200: MailboxOut}, openapi_extra=READ_ERRORS, summary="Read a mailbox"
)
def read_mailbox(request: HttpRequest, id: Id) -> Mailbox:
    return mailbox_or_404(request, id)


@router.get(
    "/{id}/live/{remote_id}",
    response={200: LiveMessageOut},
    openapi_extra=errors_doc(401, 404, 422, 502),
    by_alias=True,
    summary="Read a live message of your mailbox",
)
def read_live_message(request: HttpRequest, id: Id, remote_id: str) -> dict[str, Any]:
    """A message of your own mailbox that keeps no copy (privacy mode), read from the
    provider now (a notification's ``live_message``); nothing of it is stored. 404 for
    another user's mailbox (their mail is read through the records it is on); 502 when the
    provider does not answer."""
    return live_mail.read(request, current_user(request), id, remote_id)


@router.get(
    "/{id}/status",
    response={200: MailboxStatusOut},
    openapi_extra=READ_ERRORS,
    summary="Sync status of a mailbox",
)
def mailbox_status(request: HttpRequest, id: Id) -> actions.MailboxStatus:
    """Progress while syncing (done/total, bytes, rate, ETA), counts and the last error."""
    return actions.mailbox_status(mailbox_or_404(request, id))


@router.get(
    "/{id}/folders",
    response={200: Page[FolderOut]},
    openapi_extra=READ_ERRORS,
    summary="List a mailbox's folders",
)
def list_folders(request: HttpRequest, id: Id, params: Query[ListParams]) -> dict:
    """The server's folders as crmail knows them after a sync, with their roles."""
    mailbox = mailbox_or_404(request, id)
    qs = Folder.objects.filter(mailbox=mailbox).annotate(messages=Count("locations"))
    return records.page(qs.order_by("name", "pk"), params)


@router.get(
    "/{id}/messages",
    response={200: Page[MessageSummaryOut]},
    openapi_extra=errors_doc(401, 403, 404, 422),
    summary="List the messages stored for a mailbox",
)
def list_messages(request: HttpRequest, id: Id, filters: Query[MessageFilters]) -> dict:
    """The messages synced from one of your mailboxes, newest first, with their folders and
    flags there. Only a mailbox's owner lists its messages: for another user's mailbox an
    administrator gets 403 (its settings, status and folders, with their counts, stay
    readable). Mail shared by colleagues is read through the records it is linked to."""
    mailbox = mailbox_or_404(request, id)
    user = current_user(request)
    if not may_list_mailbox(user, mailbox):
        raise Forbidden(
            "Only its owner lists the messages of a mailbox. The mail its owner shares is "
            "on the records it is linked to (GET /api/v1/contacts/{id}/emails, …)."
        )
    locations = mailbox_copies(user, mailbox)
    if filters.folder is not None:
        locations = locations.filter(folder_id=filters.folder)
    qs = (
        Message.objects.filter(pk__in=locations.values("message_id"))
        .only(
            "pk",
            "subject",
            "from_address",
            "from_name",
            "date",
            "size",
            "has_attachments",
            "parse_state",
        )
        .order_by("-date", "-pk")
    )
    result = records.page(qs, filters)
    messages = result["items"]
    where: dict[int, list[Location]] = {m.pk: [] for m in messages}
    for location in locations.filter(message_id__in=list(where)).select_related("folder"):
        where[location.message_id].append(location)
    held = tags.tags_of(where)
    result["items"] = [summary(m, where[m.pk]) | {"tags": held.get(m.pk, [])} for m in messages]
    return result


def summary(message: Message, locations: list[Location]) -> dict[str, Any]:
    """A message as the list shows it: its folders in this mailbox and its flags there."""
    flags: list[str] = []
    for name in FLAG_FIELDS:
        if any(getattr(loc, name) for loc in locations):
            flags.append(name)
    for loc in locations:
        flags += [k for k in loc.keywords.split() if k not in flags]
    folders = {loc.folder_id: loc.folder for loc in locations}
    return {
        "id": message.pk,
        "subject": message.subject,
        "from_address": message.from_address,
        "from_name": message.from_name,
        "date": message.date,
        "size": message.size,
        "has_attachments": message.has_attachments,
        "parse_state": message.parse_state,
        "folders": [{"id": f.pk, "name": f.name, "role": f.role} for f in folders.values()],
        "flags": flags,
    }


# ---------------------------------------------------------------------------- writes


@router.post(
    "", response={201: MailboxOut}, openapi_extra=WRITE_ERRORS, summary="Connect a mailbox"
)
def connect_mailbox(request: HttpRequest, payload: MailboxIn) -> Mailbox:
    """Test the settings (login, folders; the outgoing server when given), then save them and
    make the mailbox the one that fetches. A failure answers 422 naming ``incoming`` or
    ``outgoing`` and saying what went wrong; nothing is saved. The first sync is queued at
    once; follow it with ``GET /mailboxes/{id}/status``."""
    actor = current_user(request)
    owner = actor
    if payload.owner_id is not None and payload.owner_id != actor.pk:
        found = User.objects.filter(pk=payload.owner_id, is_active=True).first()
        if found is None:
            raise Invalid.one("owner_id", f"No active user has id {payload.owner_id}.")
        owner = found
    given = payload.model_dump(
        exclude_unset=True,
        exclude={"owner_id", "sharing", "remove_labels", "oauth_refresh_token", "keeps_copy"},
    )
    given.setdefault("provider", payload.provider)
    given.setdefault("protocol", payload.protocol)
    fields = model_fields(given)
    _check_credentials(payload)
    if payload.protocol in actions.API_PRESETS:
        assert payload.oauth_refresh_token
        try:
            fields.update(
                actions.api_mailbox_fields(
                    payload.protocol, payload.oauth_refresh_token, keeps_copy=payload.keeps_copy
                )
            )
        except DriverError as exc:
            raise Invalid.one("oauth_refresh_token", str(exc)) from None
    else:
        fields = with_preset(fields)
    fields.setdefault("login", fields["email"])
    sharing = payload.sharing or sharing_queries.connect_choice(owner, actor).mode
    with action_errors():
        mailbox = sharing_actions.connect_mailbox(actor, owner, fields, sharing=sharing)
    tasks.request_sync(mailbox)
    return mailbox_or_404(request, mailbox.pk)


def _check_credentials(payload: MailboxIn) -> None:
    """A password for IMAP and POP3; a refresh token for the APIs, which alone may keep
    no copy."""
    if payload.protocol in actions.API_PRESETS:
        if not payload.oauth_refresh_token:
            raise Invalid.one(
                "oauth_refresh_token",
                f"A {payload.protocol} mailbox signs in with OAuth: give oauth_refresh_token.",
            )
        if payload.password:
            raise Invalid.one("password", f"A {payload.protocol} mailbox takes no password.")
        return
    if not payload.password:
        raise Invalid.one("password", f"A {payload.protocol} mailbox needs its password.")
    for name in ("oauth_refresh_token", "keeps_copy"):
        if getattr(payload, name):
            raise Invalid.one(
                name,
                f"{name} is for gmail and graph mailboxes; {payload.protocol} always keeps a copy.",
            )


@router.patch(
    "/{id}", response={200: MailboxOut}, openapi_extra=WRITE_ERRORS, summary="Change a mailbox"
)
def update_mailbox(request: HttpRequest, id: Id, payload: MailboxSettings) -> Mailbox:
    """Change the settings given. A changed server or credential is tested first; an empty
    or absent ``password`` keeps the stored one."""
    mailbox = mailbox_or_404(request, id)
    changes = payload.model_dump(exclude_unset=True)
    remove_labels = bool(changes.pop("remove_labels", False))
    with action_errors():
        actions.update_mailbox(
            current_user(request), mailbox, model_fields(changes), remove_labels=remove_labels
        )
    return mailbox_or_404(request, id)


@router.get(
    "/{id}/label-moves",
    response={200: Page[LabelMoveOut]},
    openapi_extra=errors_doc(401, 403, 404, 422),
    summary="List the moves of the labels by deal state",
)
def list_label_moves(request: HttpRequest, id: Id, params: Query[ListParams]) -> dict:
    """The messages the labels by deal state moved on the server, newest first, and
    whether each can be moved back. Like its messages, only the mailbox's owner lists
    them: an administrator gets 403 for another user's mailbox."""
    mailbox = mailbox_or_404(request, id)
    if not may_list_mailbox(current_user(request), mailbox):
        raise Forbidden("Only its owner lists the mail the labels of a mailbox moved.")
    qs = LabelMove.objects.filter(mailbox=mailbox).select_related("message")
    result = records.page(qs.order_by("-moved_at", "-pk"), params)
    moves = result["items"]
    undoable = labels_sorting.undoable(moves)
    result["items"] = [label_move(m, undoable[m.pk]) for m in moves]
    return result


def label_move(move: LabelMove, can_undo: bool) -> dict[str, Any]:
    return {
        "id": move.pk,
        "moved_at": move.moved_at,
        "from_address": move.from_address,
        "subject": move.message.subject if move.message else None,
        "source": move.source,
        "source_name": move.source_name,
        "target": move.target,
        "target_name": move.target_name,
        "category": move.category,
        "reason": move.reason,
        "undone_at": move.undone_at,
        "can_undo": can_undo,
    }


@router.post(
    "/{id}/label-moves/{move_id}/undo",
    response={200: LabelMoveOut},
    openapi_extra=errors_doc(401, 403, 404, 409, 422),
    summary="Move a message back where the labels took it from",
)
def undo_label_move(request: HttpRequest, id: Id, move_id: Id) -> dict:
    """The message goes back to the folder or label it left, and the sorter leaves it
    there. Only the mailbox's owner undoes (403); a move that cannot be undone (undone
    already, moved again since, the server refusing) answers 409 saying why."""
    mailbox = mailbox_or_404(request, id)
    move = records.get_or_404(LabelMove.objects.filter(mailbox=mailbox), move_id)
    try:
        labels_tasks.undo(current_user(request), move)
    except people_actions.NotAllowed as exc:
        raise Forbidden(str(exc)) from None
    except (labels_sorting.CannotUndo, labels_tasks.Busy) as exc:
        raise HttpError(409, str(exc)) from None
    except DriverError as exc:
        raise HttpError(409, f"The mail server did not move the message back: {exc}") from None
    move.refresh_from_db()
    return label_move(move, False)


@router.post(
    "/{id}/sync",
    response={202: MailboxStatusOut},
    openapi_extra=ACCEPTED,
    summary="Sync a mailbox now",
)
def sync_mailbox(request: HttpRequest, id: Id) -> actions.MailboxStatus:
    """Queue a sync at once; follow it with ``GET /mailboxes/{id}/status``. A sync already
    running is not started twice."""
    mailbox = mailbox_or_404(request, id)
    if not mailbox.is_active:
        raise HttpError(409, "This mailbox is deactivated: activate it to sync it.")
    tasks.request_sync(mailbox)
    mailbox.refresh_from_db()
    return actions.mailbox_status(mailbox)


@router.post(
    "/{id}/activate",
    response={200: MailboxOut},
    openapi_extra=WRITE_ERRORS,
    summary="Make a mailbox the one that fetches",
)
def activate_mailbox(request: HttpRequest, id: Id) -> Mailbox:
    """One mailbox fetches per user: the one active before stops."""
    mailbox = mailbox_or_404(request, id)
    with action_errors():
        actions.activate_mailbox(current_user(request), mailbox)
    return mailbox_or_404(request, id)


@router.post(
    "/{id}/deactivate",
    response={200: DeactivatedOut},
    openapi_extra=WRITE_ERRORS,
    summary="Stop fetching a mailbox",
)
def deactivate_mailbox(request: HttpRequest, id: Id, payload: DeactivateIn) -> dict:
    """``keep_mail`` is required: keep what was synced, or forget it (mail sent from crmail
    and mail another mailbox holds stay). ``remove_labels`` takes the labels by deal
    state off the server (a job)."""
    mailbox = mailbox_or_404(request, id)
    with action_errors():
        removed = actions.deactivate_mailbox(
            current_user(request),
            mailbox,
            keep_mail=payload.keep_mail,
            remove_labels=payload.remove_labels,
        )
    return {"mailbox": mailbox_or_404(request, id), "messages_removed": removed}


@router.put(
    "/{id}/lock",
    response={200: MailboxOut},
    openapi_extra=WRITE_ERRORS,
    summary="Lock a user's mail configuration (administrators)",
)
def lock_mailbox(request: HttpRequest, id: Id, payload: LockIn) -> Mailbox:
    """Locks (or unlocks) every mailbox of the owner: only administrators change them then."""
    mailbox = mailbox_or_404(request, id)
    with action_errors():
        actions.set_locked(current_user(request), mailbox.owner, payload.locked)
    return mailbox_or_404(request, id)


@router.patch(
    "/{id}/folders/{folder_id}",
    response={200: FolderOut},
    openapi_extra=WRITE_ERRORS,
    summary="Map a folder or leave it out of sync",
)
def update_folder(request: HttpRequest, id: Id, folder_id: Id, payload: FolderPatch) -> Folder:
    """``role`` gives the folder one of crmail's roles (the folder that had it loses it);
    ``sync_enabled: false`` leaves it out of sync."""
    mailbox = mailbox_or_404(request, id)
    folders = Folder.objects.filter(mailbox=mailbox).select_related("mailbox__owner")
    folder = records.get_or_404(folders, folder_id)
    changes = payload.model_dump(exclude_unset=True)
    actor = current_user(request)
    with action_errors(), transaction.atomic():
        if "role" in changes:
            actions.map_folder(actor, folder, (changes["role"] or "").strip())
        if "sync_enabled" in changes:
            actions.set_folder_sync(actor, folder, changes["sync_enabled"])
    return records.get_or_404(folders.annotate(messages=Count("locations")), folder_id)
