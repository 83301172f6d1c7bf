"""A user's mailboxes (SPEC F1, F2): list, connect, status, folders, settings, deactivation.

Every mailbox is looked up through ``actions.mailboxes_for(user)``: another user's mailbox
answers 404 to anyone but an administrator. Views shape input and call one action; the
actions check permissions (Mail Integration, locks) and test connections, and their
refusals come back in words next to the field they concern.

Signing in with OAuth leaves crmail for the provider. The page's Content-Security-Policy
(``form-action 'self'``) forbids a form submission to be redirected to another site, so
the start views answer htmx with ``HX-Redirect`` and a plain submission with a page
holding a link to continue.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from crmail.mailboxes import actions, oauth, tasks
from crmail.mailboxes.connect import can
from crmail.mailboxes.drivers.base import DriverError, Sends
from crmail.mailboxes.models import AuthMethod, Folder, Location, Mailbox, Protocol, SyncState
from crmail.mailboxes.providers import CUSTOM, PRESETS
from crmail.people.actions import Invalid, NotAllowed
from crmail.people.models import User
from crmail.sharing import actions as sharing_actions
from crmail.sharing import queries as sharing_queries
from crmail.web.forms import PRESET_FIELDS, MailboxConnectForm, MailboxSettingsForm
from crmail.web.views import dropbox as dropbox_pages
from crmail.web.views.mailbox_labels import labels_context

SIDES = {"incoming": "Incoming server", "outgoing": "Outgoing server"}
ROLE_LABELS = {
    "inbox": "Inbox",
    "sent": "Sent",
    "drafts": "Drafts",
    "trash": "Trash",
    "junk": "Junk",
    "archive": "Archive",
    "outbox": "Outbox",
}
# The edit page's sections, in order (fields an OAuth or IMAP mailbox lacks are skipped).
EDIT_GROUPS = [
    ("Account", ("email", "login", "password")),
    (
        "Servers",
        (
            "host",
            "port",
            "security",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "allow_self_signed",
        ),
    ),
    (
        "Sending",
        (
            "display_name",
            "smtp_no_login",
            "smtp_same_credentials",
            "smtp_login",
            "smtp_password",
            "store_sent_on_server",
            "extra_from_addresses",
        ),
    ),
    ("Import filter", ("import_folders", "import_since", "keep_on_server")),
    ("Customer mail alerts", ("customer_alerts",)),
]
# Sign-ins started from this browser session: state -> what to do with the tokens.
_SESSION_KEY = "crmail_mailbox_oauth"
_NOT_REPLAYED = ("password", "smtp_password", "csrfmiddlewaretoken", "oauth")


def _mailbox(request: HttpRequest, pk: int) -> Mailbox:
    """The mailbox when the user may manage it; 404 otherwise (its existence never shows)."""
    return get_object_or_404(actions.mailboxes_for(request.user), pk=pk)


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _owner(request: HttpRequest) -> User:
    """Whose mailbox is being connected: oneself, or (administrators) ``?user=<id>``."""
    wanted = request.GET.get("user", "")
    if wanted and request.user.is_admin and wanted.isdigit():
        return get_object_or_404(User, pk=int(wanted), is_active=True)
    return request.user


# -- formatting -------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """ "about 3 min" for an ETA; empty when unknown."""
    if seconds is None:
        return ""
    seconds = max(seconds, 0)
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} min"
    hours = seconds / 3600
    if hours < 36:
        return f"about {hours:.0f} h" if hours >= 10 else f"about {hours:.1f} h"
    return f"about {hours / 24:.1f} days"


# How long the status panel keeps looking for a sync that was asked for but has not started
# (no job worker running, say): then it stops and says so.
FOLLOW_FOR = timedelta(minutes=10)


def _requested_since(request: HttpRequest) -> datetime | None:
    """When the sync being followed was asked for (``?since=`` Unix time), if given."""
    try:
        return datetime.fromtimestamp(float(request.GET.get("since", "")), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _following(pk: int, since: datetime) -> HttpResponse:
    """The mailbox page, following the sync asked for at ``since``."""
    url = reverse("web:mailbox_detail", args=[pk])
    return redirect(f"{url}?since={since.timestamp():.3f}")


def _status_context(mailbox: Mailbox, since: datetime | None = None) -> dict[str, Any]:
    status = actions.mailbox_status(mailbox)
    syncing = status.state == SyncState.SYNCING
    # A sync that is queued (first sync, or one just asked for) and has not started yet.
    started = mailbox.sync_started_at is not None and since is not None
    queued = (
        mailbox.is_active
        and not syncing
        and (
            status.state == SyncState.NEW
            or (since is not None and not (started and mailbox.sync_started_at >= since))
        )
    )
    stalled = queued and timezone.now() - (since or mailbox.created_at) > FOLLOW_FOR
    queued = queued and not stalled
    percent = None
    if status.total:
        percent = min(100, round(100 * status.done / status.total))
    rate = ""
    if status.rate_per_second:
        rate = f"{status.rate_per_second:.1f} messages/s"
    return {
        "mailbox": mailbox,
        "status": status,
        "syncing": syncing,
        "queued": queued,
        "stalled": stalled,
        "polling": syncing or queued,
        "since": f"{since.timestamp():.3f}" if since else "",
        "percent": percent,
        "rate": rate,
        "eta": duration(status.eta_seconds),
    }


# -- the list ----------------------------------------------------------------------------


@login_required
def mailbox_list(request: HttpRequest, pattern_form: Any = None) -> HttpResponse:
    user = request.user
    messages_held = (
        Location.objects.filter(mailbox=OuterRef("pk"))
        .values("mailbox")
        .annotate(n=Count("message", distinct=True))
        .values("n")
    )
    folders = (
        Folder.objects.filter(mailbox=OuterRef("pk"))
        .values("mailbox")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = actions.mailboxes_for(user).annotate(
        message_count=Coalesce(Subquery(messages_held, output_field=IntegerField()), Value(0)),
        folder_count=Coalesce(Subquery(folders, output_field=IntegerField()), Value(0)),
    )
    shown_user = None
    people: list[User] = []
    if user.is_admin:
        people = list(User.objects.filter(is_active=True).order_by("name", "email"))
        wanted = request.GET.get("user", "")
        if wanted.isdigit():
            shown_user = next((p for p in people if p.pk == int(wanted)), None)
            if shown_user is None:
                shown_user = get_object_or_404(User, pk=int(wanted))
            rows = rows.filter(owner=shown_user)
        rows = rows.order_by("owner__name", "owner__email", "-is_active", "email")
    else:
        rows = rows.order_by("-is_active", "email")
    rows = list(rows)
    for m in rows:  # a lease look-up for the few marked syncing
        m.interrupted = tasks.is_interrupted(m)
        m.state_label = actions.state_label(m)
    context = {
        "rows": rows,
        "people": people,
        "shown_user": shown_user,
        "may_connect": actions.may_connect(user),
        "locked": actions.is_locked_for(user, user),
        **dropbox_pages.card_context(user, pattern_form),
    }
    return render(request, "web/mailboxes/list.html", context)


# -- connecting --------------------------------------------------------------------------


def _oauth_buttons() -> list[dict[str, str]]:
    """The "Sign in with …" buttons this server can offer, each for one preset."""
    buttons = []
    for provider in oauth.configured_providers():
        presets = [k for k, v in oauth.PRESET_PROVIDERS.items() if v == provider.key]
        for key in presets or [CUSTOM.key]:
            buttons.append(
                {"preset": key, "value": key if presets else provider.key, "name": provider.name}
            )
    return buttons


def _connect_page(
    request: HttpRequest, form: MailboxConnectForm, owner: User, *, status: int = 200
) -> HttpResponse:
    chosen = str(form.data.get("preset") or form.initial.get("preset") or CUSTOM.key)
    chosen_preset = PRESETS.get(chosen, CUSTOM)
    query = f"?user={owner.pk}" if owner.pk != request.user.pk else ""
    # Choosing a provider fetches its hints and sign-in buttons (the fields a preset fills
    # in are hidden by the style sheet while it is chosen).
    form.fields["preset"].widget.attrs.update(
        {
            "hx-get": reverse("web:mailbox_connect") + query,
            "hx-trigger": "change",
            "hx-target": "#provider-info",
            "hx-select": "#provider-info",
            "hx-swap": "outerHTML",
        }
    )
    context = {
        "form": form,
        "owner": owner,
        "query": query,
        "chosen_preset": chosen_preset,
        "buttons": [b for b in _oauth_buttons() if b["preset"] == chosen_preset.key],
    }
    return render(request, "web/mailboxes/connect.html", context, status=status)


def _check_may_connect(actor: User, owner: User) -> None:
    if not actions.may_connect(owner):
        who = "Your" if owner.pk == actor.pk else f"{owner.email}'s"
        raise PermissionDenied(
            f"{who} profile does not include Mail Integration, so no mailbox can be connected. "
            "Ask an administrator to add it to the profile."
        )
    if actions.is_locked_for(actor, owner):
        raise PermissionDenied(
            "An administrator has locked this mail configuration: ask them to change it."
        )


def _connect_form(
    request: HttpRequest, owner: User, data: Any = None, **kwargs: Any
) -> MailboxConnectForm:
    """The connect form, with the owner's mail sharing choice preselected (the organisation's
    default for a first mailbox) and read-only when an administrator locked it."""
    choice = sharing_queries.connect_choice(owner, request.user)
    return MailboxConnectForm(data, sharing=choice.mode, sharing_locked=choice.locked, **kwargs)


@login_required
@require_http_methods(["GET", "POST"])
def mailbox_connect(request: HttpRequest) -> HttpResponse:
    owner = _owner(request)
    _check_may_connect(request.user, owner)
    if request.method != "POST":
        initial = {"email": owner.email, "preset": request.GET.get("preset") or CUSTOM.key}
        return _connect_page(request, _connect_form(request, owner, initial=initial), owner)
    form = _connect_form(request, owner, request.POST)
    if form.is_valid() and form.uses_api():
        api = Protocol(form.cleaned_data["protocol"]).label
        name = oauth.PRESET_PROVIDERS.get(form.cleaned_data["preset"], "").title()
        form.add_error(
            "protocol", f"{api} needs no password: use “Sign in with {name}” to connect it."
        )
    elif form.is_valid():
        hidden = PRESET_FIELDS if form.uses_preset() else ()
        try:
            mailbox = sharing_actions.connect_mailbox(
                request.user,
                owner,
                form.mailbox_fields(),
                sharing=form.cleaned_data["sharing"] or None,
            )
        except Invalid as exc:
            form.add_action_errors(exc.errors, SIDES, hidden)
        except NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
        else:
            return _connected(request, mailbox)
    return _connect_page(request, form, owner)


def _connected(request: HttpRequest, mailbox: Mailbox) -> HttpResponse:
    asked = timezone.now()
    tasks.request_sync(mailbox)
    messages.success(
        request,
        f"{mailbox.email} is connected and is the mailbox that fetches; its mail syncs now.",
    )
    return _following(mailbox.pk, asked)


def _start_sign_in(
    request: HttpRequest,
    provider_key: str,
    login_hint: str,
    then: dict[str, Any],
    *,
    protocol: str,
) -> HttpResponse:
    """Send the user to the provider, asking the access ``protocol`` needs (its API's or
    IMAP/POP/SMTP's); ``then`` says what the callback does with the tokens."""
    redirect_uri = request.build_absolute_uri(reverse("web:mailbox_oauth_callback"))
    url, state = oauth.start_authorization(
        provider_key,
        request.user,
        redirect_uri,
        login_hint=login_hint,
        resource=oauth.resource_for(protocol),
    )
    pending = dict(request.session.get(_SESSION_KEY) or {})
    pending[state] = then
    request.session[_SESSION_KEY] = dict(list(pending.items())[-5:])  # a few at most
    if _is_htmx(request):
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    provider_name = oauth.provider(provider_key).name
    return render(
        request, "web/mailboxes/oauth_continue.html", {"url": url, "provider": provider_name}
    )


@login_required
@require_POST
def mailbox_oauth_start(request: HttpRequest) -> HttpResponse:
    """ "Sign in with …" on the connect page: the form's settings, then the provider."""
    owner = _owner(request)
    _check_may_connect(request.user, owner)
    form = _connect_form(request, owner, request.POST)
    offered = {(b["preset"], b["value"]) for b in _oauth_buttons()}
    chosen = (request.POST.get("preset", ""), request.POST.get("oauth", ""))
    if chosen not in offered:
        form.is_valid()
        form.add_error(None, "Signing in with this provider is not set up on this server.")
    elif form.is_valid():
        try:
            return _start_sign_in(
                request,
                chosen[1],
                form.cleaned_data["email"],
                {
                    "owner": owner.pk,
                    "provider": chosen[1],
                    "form": {k: v for k, v in request.POST.items() if k not in _NOT_REPLAYED},
                },
                protocol=form.cleaned_data["protocol"],
            )
        except DriverError as exc:
            form.add_error(None, str(exc))
    return _connect_page(request, form, owner)


@login_required
@require_POST
def mailbox_reauth(request: HttpRequest, pk: int) -> HttpResponse:
    """Sign in to the provider again for a mailbox whose access was withdrawn or expired."""
    mailbox = _mailbox(request, pk)
    if mailbox.auth_method != AuthMethod.OAUTH2:
        messages.error(request, "This mailbox signs in with a password: change it in Edit.")
        return redirect("web:mailbox_detail", pk=pk)
    if actions.is_locked_for(request.user, mailbox.owner):
        raise PermissionDenied("An administrator has locked this mail configuration.")
    try:
        return _start_sign_in(
            request,
            mailbox.provider,
            mailbox.email,
            {"mailbox": mailbox.pk},
            protocol=mailbox.protocol,
        )
    except DriverError as exc:
        messages.error(request, str(exc))
        if _is_htmx(request):
            return HttpResponse(
                status=204, headers={"HX-Redirect": reverse("web:mailbox_detail", args=[pk])}
            )
        return redirect("web:mailbox_detail", pk=pk)


def _oauth_failed(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "web/mailboxes/oauth_error.html", {"message": message}, status=400)


@login_required
@require_http_methods(["GET"])
def mailbox_oauth_callback(request: HttpRequest) -> HttpResponse:
    """Where the provider sends the user back: take the tokens, connect or re-authenticate."""
    state = request.GET.get("state", "")
    pending = dict(request.session.get(_SESSION_KEY) or {})
    then = pending.pop(state, None)
    request.session[_SESSION_KEY] = pending
    try:
        tokens = oauth.complete_authorization(request.user, request.GET)
    except DriverError as exc:
        return _oauth_failed(request, str(exc))
    if then is None:
        return _oauth_failed(
            request,
            "This sign-in was not started from this browser session: start it again from the "
            "mailbox settings.",
        )
    if then.get("mailbox"):
        mailbox = _mailbox(request, then["mailbox"])
        try:
            actions.reauthorize_mailbox(request.user, mailbox, tokens)
        except NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
        tasks.request_sync(mailbox)
        messages.success(request, f"Signed in again: {mailbox.email} syncs again.")
        return redirect("web:mailbox_detail", pk=mailbox.pk)

    owner = get_object_or_404(User, pk=then["owner"])
    if owner.pk != request.user.pk and not request.user.is_admin:
        raise Http404
    form = _connect_form(request, owner, then["form"])
    if not form.is_valid():
        return _connect_page(request, form, owner)
    fields = form.mailbox_fields()
    fields.update(
        provider=then["provider"],
        auth_method=AuthMethod.OAUTH2,
        secret=tokens.refresh_token,
        access_token=tokens.access_token,
        access_token_expires_at=tokens.expires_at,
        access_token_resource=tokens.resource,
        smtp_same_credentials=True,
        smtp_login="",
        smtp_secret="",
    )
    try:
        mailbox = sharing_actions.connect_mailbox(
            request.user, owner, fields, sharing=form.cleaned_data["sharing"] or None
        )
    except Invalid as exc:
        hidden = PRESET_FIELDS if form.uses_preset() else ()
        form.add_action_errors(exc.errors, SIDES, hidden)
        return _connect_page(request, form, owner)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    return _connected(request, mailbox)


# -- one mailbox -------------------------------------------------------------------------


def _folders_context(request: HttpRequest, mailbox: Mailbox, **extra: Any) -> dict[str, Any]:
    folders = list(mailbox.folders.filter(exists_on_server=True).order_by("name"))
    return {
        "mailbox": mailbox,
        "folders": folders,
        "roles": [(r, ROLE_LABELS[r]) for r in actions.FOLDER_ROLES],
        "role_labels": ROLE_LABELS,
        "can_change": not actions.is_locked_for(request.user, mailbox.owner),
        "needs_sent": actions.needs_sent_folder(mailbox),
        **extra,
    }


@login_required
def mailbox_detail(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = _mailbox(request, pk)
    context = {
        **_status_context(mailbox, _requested_since(request)),
        **_folders_context(request, mailbox),
        **labels_context(request, mailbox),
        "locked": actions.is_locked_for(request.user, mailbox.owner),
        "sends_itself": can(mailbox, Sends),
    }
    return render(request, "web/mailboxes/detail.html", context)


@login_required
def mailbox_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status panel alone: what the detail page polls every two seconds while syncing."""
    mailbox = _mailbox(request, pk)
    context = _status_context(mailbox, _requested_since(request))
    response = render(request, "web/mailboxes/_status.html", context)
    if _is_htmx(request) and not context["polling"]:
        response.headers["HX-Trigger"] = "sync-finished"  # the folders table reloads
    return response


@login_required
@require_POST
def mailbox_sync(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = _mailbox(request, pk)
    if not mailbox.is_active:
        messages.error(request, "This mailbox is deactivated: make it active to sync it.")
    elif tasks.is_syncing(mailbox):
        messages.info(request, "A sync of this mailbox is already running.")
    else:
        asked = timezone.now()
        tasks.request_sync(mailbox)
        messages.success(request, f"A sync of {mailbox.email} was started.")
        if request.POST.get("next") != "list":
            return _following(pk, asked)
    if request.POST.get("next") == "list":
        return redirect("web:mailboxes")
    return redirect("web:mailbox_detail", pk=pk)


@login_required
@require_POST
def mailbox_activate(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = _mailbox(request, pk)
    try:
        actions.activate_mailbox(request.user, mailbox)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    messages.success(request, f"{mailbox.email} is now the mailbox that fetches.")
    return redirect("web:mailboxes")


@login_required
@require_http_methods(["GET", "POST"])
def mailbox_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask whether to keep the synced mail, then deactivate."""
    mailbox = _mailbox(request, pk)
    if actions.is_locked_for(request.user, mailbox.owner):
        raise PermissionDenied(
            "An administrator has locked this mail configuration: ask them to change it."
        )
    error = labels_error = ""
    # A mailbox that keeps no copy has no synced mail to ask about.
    choice = request.POST.get("keep_mail", "") if mailbox.keeps_copy else "keep"
    labels = request.POST.get("labels", "")
    if request.method == "POST":
        if choice not in ("keep", "discard"):
            error = "Choose whether to keep the synced mail or to remove it."
        if mailbox.deal_labels and labels not in ("keep", "remove"):
            labels_error = (
                "Choose whether to keep the three labels on the server or to remove them."
            )
        if not error and not labels_error:
            try:
                removed = actions.deactivate_mailbox(
                    request.user,
                    mailbox,
                    keep_mail=choice == "keep",
                    remove_labels=labels == "remove",
                )
            except NotAllowed as exc:
                raise PermissionDenied(str(exc)) from None
            if not mailbox.keeps_copy:
                note = "its live mail left the records."
            elif choice == "keep":
                note = "its synced mail stays on the records."
            else:
                note = f"{removed} synced message{'' if removed == 1 else 's'} removed."
            if labels == "remove":
                note += " Its labels are being removed from the server: their mail goes back"
                note += " to the Inbox."
            messages.success(request, f"{mailbox.email} was deactivated: {note}")
            return redirect("web:mailboxes")
    status = actions.mailbox_status(mailbox)
    context = {
        "mailbox": mailbox,
        "status": status,
        "error": error,
        "choice": choice,
        "labels": labels,
        "labels_error": labels_error,
    }
    return render(request, "web/mailboxes/deactivate.html", context)


@login_required
@require_POST
def mailbox_sent_folder(request: HttpRequest, pk: int) -> HttpResponse:
    """Create the Sent folder a server lacks (IMAP CREATE), and say how it went."""
    mailbox = _mailbox(request, pk)
    try:
        folder, created = actions.create_sent_folder(request.user, mailbox)
    except Invalid as exc:
        messages.error(request, " ".join(e["message"] for e in exc.errors))
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except DriverError as exc:
        messages.error(request, f"The Sent folder could not be created: {exc}")
    else:
        if created:
            messages.success(
                request,
                f"The folder {folder.name} was created on the server and is the Sent folder: "
                "copies of the mail you send from crmail go there.",
            )
        else:
            messages.success(
                request,
                f"The server has a Sent folder after all: {folder.name} is now the Sent folder.",
            )
    return redirect(reverse("web:mailbox_detail", args=[pk]) + "#folders")


@login_required
@require_POST
def mailbox_folder(request: HttpRequest, pk: int, folder_pk: int) -> HttpResponse:
    """Change one folder's role or whether it syncs; htmx gets the folders table back."""
    mailbox = _mailbox(request, pk)
    folder = get_object_or_404(Folder, pk=folder_pk, mailbox=mailbox)
    error = ""
    try:
        if "role" in request.POST:
            actions.map_folder(request.user, folder, request.POST["role"].strip())
            done = f"{folder.name}: role saved."
        elif request.POST.get("sync") in ("1", "0"):
            actions.set_folder_sync(request.user, folder, request.POST["sync"] == "1")
            done = f"{folder.name}: {'syncs' if folder.sync_enabled else 'no longer syncs'}."
        else:
            raise Invalid([{"field": "sync", "message": "Say whether the folder syncs (1 or 0)."}])
    except Invalid as exc:
        error = "; ".join(f"{e['field'].capitalize()}: {e['message']}" for e in exc.errors)
        done = ""
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    if _is_htmx(request):
        context = _folders_context(request, mailbox, error=error, done=done)
        return render(request, "web/mailboxes/_folders.html", context, status=400 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect(reverse("web:mailbox_detail", args=[pk]) + "#folders")


@login_required
@require_http_methods(["GET", "POST"])
def mailbox_edit(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = _mailbox(request, pk)
    locked = actions.is_locked_for(request.user, mailbox.owner)
    if locked and request.method == "POST":
        raise PermissionDenied(
            "An administrator has locked this mail configuration: ask them to change it."
        )
    oauth_signed = mailbox.auth_method == AuthMethod.OAUTH2
    form = MailboxSettingsForm(
        request.POST or None, initial=MailboxSettingsForm.initial_for(mailbox)
    )
    if oauth_signed:
        for name in (
            "password",
            "smtp_no_login",
            "smtp_same_credentials",
            "smtp_login",
            "smtp_password",
        ):
            del form.fields[name]
    else:
        form.fields["password"].help_text = "Leave empty to keep the stored password."
        form.fields["smtp_password"].help_text = "Leave empty to keep the stored password."
    if mailbox.protocol != "pop3":
        del form.fields["keep_on_server"]
    if request.method == "POST" and form.is_valid():
        fields = form.mailbox_fields()
        if oauth_signed:
            for name in ("secret", "smtp_same_credentials", "smtp_login", "smtp_secret"):
                fields.pop(name)
        if mailbox.protocol != "pop3":
            fields.pop("keep_on_server")
        try:
            actions.update_mailbox(request.user, mailbox, fields)
        except Invalid as exc:
            form.add_action_errors(exc.errors, SIDES)
            mailbox.refresh_from_db()
        except NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
        else:
            messages.success(request, f"The settings of {mailbox.email} were saved.")
            return redirect("web:mailbox_detail", pk=pk)
    groups = [
        (legend, [form[name] for name in names if name in form.fields])
        for legend, names in EDIT_GROUPS
    ]
    return render(
        request,
        "web/mailboxes/edit.html",
        {
            "form": form,
            "groups": groups,
            "mailbox": mailbox,
            "locked": locked,
            "oauth_signed": oauth_signed,
        },
    )
