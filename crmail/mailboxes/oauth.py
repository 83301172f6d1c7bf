"""OAuth 2 for mailboxes (SPEC F1): signing in at the provider, and access tokens for XOAUTH2.

Signing in is the authorization code flow with PKCE (RFC 7636, S256) through authlib:
``start_authorization`` gives the URL to send the user to and keeps the code verifier on
the server, in a short-lived record of Django's database session store whose key is the
``state``; the callback calls ``complete_authorization`` (or ``pending_authorization`` then
``finish_authorization``), and ``store_tokens`` puts the tokens on the mailbox.

``access_token`` gives a token valid for at least five more minutes, refreshing it when
needed, once for all workers (a row lock on PostgreSQL, a lock per process, and a
compare-and-set on the expiry everywhere). When the provider answers ``invalid_grant``
the mailbox becomes "needs re-authentication" with the reason in ``last_error``, which
the owner sees on the mailbox; a warning is logged. Tokens never appear in logs,
messages or reprs. See docs/decisions/007-oauth.md.

Providers come from settings or the environment: ``CRMAIL_OAUTH_GOOGLE_CLIENT_ID`` and
``_SECRET``; ``CRMAIL_OAUTH_MICROSOFT_CLIENT_ID``, ``_SECRET`` and ``_TENANT`` (default
``common``); and any other NAME with ``CRMAIL_OAUTH_<NAME>_AUTHORIZE_URL``, ``_TOKEN_URL``,
``_CLIENT_ID``, ``_CLIENT_SECRET`` (empty for a public client), ``_SCOPES`` (space- or
comma-separated), and optionally ``_LABEL`` (the name users see) and ``_TOKEN_AUTH``
(``client_secret_basic``, the default, or ``client_secret_post``). A mailbox names its
provider in ``Mailbox.provider``: the presets ``gmail`` and ``outlook`` use Google and
Microsoft, any other value is the NAME of a configured provider.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.utils import timezone

from crmail.config import crypto
from crmail.mailboxes.drivers.base import AuthFailed, ConnectFailed, DriverError
from crmail.mailboxes.models import AuthMethod, Mailbox, SyncState

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)  # a token with less left than this is renewed first
DEFAULT_LIFETIME = timedelta(hours=1)  # when the provider does not say (expires_in)
PENDING_SECONDS = 10 * 60  # how long a started sign-in may take
HTTP_TIMEOUT = 20.0  # seconds, for each call to a token endpoint
VERIFIER_LENGTH = 64  # PKCE code verifier: 43 to 128 characters (RFC 7636 §4.1)
_PENDING_KEY = "crmail_oauth_pending"

GOOGLE_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, no secret)
GOOGLE_SCOPES = ("https://mail.google.com/",)  # IMAP, POP and SMTP
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
MICROSOFT_SCOPES = (
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/POP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",  # without it Microsoft sends no refresh token
)
PRESET_PROVIDERS = {"gmail": "google", "outlook": "microsoft"}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
_CUSTOM_SETTING = re.compile(r"^CRMAIL_OAUTH_([A-Z][A-Z0-9_]*)_TOKEN_URL$")


# -- errors ------------------------------------------------------------------------------


class OAuthNotConfigured(DriverError):
    """The server has no OAuth client for this provider (an administrator's setting)."""

    kind = "oauth_unconfigured"


class AuthorizationFailed(AuthFailed):
    """Signing in at the provider did not give tokens: declined, expired, or refused."""

    kind = "oauth_failed"


# -- providers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    """An OAuth 2 authorization server crmail has a client registration with."""

    key: str  # "google", "microsoft", or a custom NAME in lower case
    name: str  # what users see: "Google", "Microsoft", or the custom label
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...]
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    client_auth: str = "client_secret_post"  # how the client proves itself at token_url
    scope_on_refresh: bool = False  # send the scopes again with a refresh_token grant


def _setting(name: str) -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "")
    return str(value).strip()


def _scopes(text: str) -> tuple[str, ...]:
    return tuple(s for s in re.split(r"[\s,]+", text) if s)


def provider(key: str) -> Provider:
    """The configured provider ``key`` (``gmail``/``outlook`` are Google/Microsoft)."""
    key = PRESET_PROVIDERS.get(key.strip().lower(), key.strip().lower())
    if key == "google":
        return _known(
            key,
            "Google",
            GOOGLE_AUTHORIZE_URL,
            GOOGLE_TOKEN_URL,
            GOOGLE_SCOPES,
            {"access_type": "offline", "prompt": "consent"},
            scope_on_refresh=False,
        )
    if key == "microsoft":
        tenant = _setting("CRMAIL_OAUTH_MICROSOFT_TENANT") or "common"
        authority = MICROSOFT_AUTHORITY.format(tenant=tenant)
        return _known(
            key,
            "Microsoft",
            f"{authority}/authorize",
            f"{authority}/token",
            MICROSOFT_SCOPES,
            {},
            scope_on_refresh=True,
        )
    return _custom(key)


def _known(
    key: str,
    name: str,
    authorize_url: str,
    token_url: str,
    scopes: tuple[str, ...],
    params: dict[str, str],
    *,
    scope_on_refresh: bool,
) -> Provider:
    prefix = f"CRMAIL_OAUTH_{key.upper()}_"
    client_id, secret = _setting(prefix + "CLIENT_ID"), _setting(prefix + "CLIENT_SECRET")
    if not client_id or not secret:
        raise OAuthNotConfigured(
            f"Signing in with {name} is not set up on this server: an administrator must "
            f"set {prefix}CLIENT_ID and {prefix}CLIENT_SECRET."
        )
    return Provider(
        key=key,
        name=name,
        authorize_url=authorize_url,
        token_url=token_url,
        client_id=client_id,
        client_secret=secret,
        scopes=scopes,
        authorize_params=params,
        client_auth="client_secret_post",
        scope_on_refresh=scope_on_refresh,
    )


def _custom(key: str) -> Provider:
    if not _NAME.match(key):
        raise OAuthNotConfigured(f"There is no OAuth provider called {key!r} on this server.")
    prefix = f"CRMAIL_OAUTH_{key.upper()}_"
    authorize_url = _setting(prefix + "AUTHORIZE_URL")
    token_url = _setting(prefix + "TOKEN_URL")
    client_id = _setting(prefix + "CLIENT_ID")
    missing = [
        prefix + name
        for name, value in (
            ("AUTHORIZE_URL", authorize_url),
            ("TOKEN_URL", token_url),
            ("CLIENT_ID", client_id),
        )
        if not value
    ]
    if len(missing) == 3:
        raise OAuthNotConfigured(f"There is no OAuth provider called {key!r} on this server.")
    if missing:
        raise OAuthNotConfigured(
            f"The OAuth provider {key!r} is not fully set up: an administrator must set "
            + ", ".join(missing)
            + "."
        )
    secret = _setting(prefix + "CLIENT_SECRET")
    client_auth = _setting(prefix + "TOKEN_AUTH") or "client_secret_basic"
    if client_auth not in ("client_secret_basic", "client_secret_post"):
        raise OAuthNotConfigured(
            f"{prefix}TOKEN_AUTH must be client_secret_basic or client_secret_post."
        )
    return Provider(
        key=key,
        name=_setting(prefix + "LABEL") or key.replace("_", " ").title(),
        authorize_url=authorize_url,
        token_url=token_url,
        client_id=client_id,
        client_secret=secret,
        scopes=_scopes(_setting(prefix + "SCOPES")),
        client_auth=client_auth if secret else "none",
        scope_on_refresh=False,
    )


def configured_providers() -> list[Provider]:
    """Every provider users can sign in with on this server (for the UI to offer)."""
    names = {"google", "microsoft"}
    for source in (os.environ, dir(settings)):
        for name in source:
            match = _CUSTOM_SETTING.match(name)
            if match:
                names.add(match.group(1).lower())
    found = []
    for key in sorted(names):
        with contextlib.suppress(OAuthNotConfigured):
            found.append(provider(key))
    return found


def provider_for(mailbox: Mailbox) -> Provider:
    return provider(mailbox.provider or "")


# -- tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint gave: the tokens themselves are left out of the repr."""

    provider: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)  # empty when the provider sent none
    expires_at: datetime
    scope: str = ""
    token_type: str = "Bearer"  # noqa: S105 (a type name)

    @classmethod
    def from_response(cls, provider_key: str, token: Mapping[str, Any]) -> TokenSet:
        access = str(token.get("access_token") or "")
        if not access:
            raise ValueError("the token endpoint's answer has no access_token")
        now = timezone.now()
        expires_at = now + DEFAULT_LIFETIME
        with contextlib.suppress(TypeError, ValueError, OverflowError, OSError):
            if token.get("expires_in") is not None:
                expires_at = now + timedelta(seconds=int(token["expires_in"]))
            elif token.get("expires_at") is not None:
                expires_at = datetime.fromtimestamp(int(token["expires_at"]), tz=UTC)
        return cls(
            provider=provider_key,
            access_token=access,
            refresh_token=str(token.get("refresh_token") or ""),
            expires_at=expires_at,
            scope=str(token.get("scope") or ""),
            token_type=str(token.get("token_type") or "Bearer"),
        )


def _client(p: Provider, *, for_refresh: bool = False) -> OAuth2Session:
    scope = " ".join(p.scopes) or None
    if for_refresh and not p.scope_on_refresh:
        scope = None
    return OAuth2Session(
        client_id=p.client_id,
        client_secret=p.client_secret or None,
        token_endpoint_auth_method=p.client_auth,
        scope=scope,
        code_challenge_method="S256",
        default_timeout=HTTP_TIMEOUT,
    )


def _scrub(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "…")
    return text


def _network_error(p: Provider, exc: requests.RequestException, doing: str) -> ConnectFailed:
    if isinstance(exc, requests.Timeout):
        return ConnectFailed(
            f"{p.name}'s sign-in server did not answer in time while {doing}: "
            "try again in a few minutes.",
            kind="timeout",
        )
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return ConnectFailed(
            f"{p.name}'s sign-in server answered with an error (HTTP "
            f"{exc.response.status_code}) while {doing}: try again in a few minutes.",
            kind="unreachable",
        )
    return ConnectFailed(
        f"Cannot reach {p.name}'s sign-in server while {doing}: check this server's network "
        "connection and try again.",
        kind="unreachable",
    )


# -- signing in --------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingAuthorization:
    """A started sign-in, as kept on the server until the provider sends the user back."""

    provider: str
    user_id: Any
    verifier: str = field(repr=False)
    redirect_uri: str


def start_authorization(
    provider_key: str,
    user: AbstractBaseUser,
    redirect_uri: str,
    *,
    login_hint: str = "",
) -> tuple[str, str]:
    """(URL to send ``user`` to, state). The PKCE verifier stays on the server."""
    p = provider(provider_key)
    verifier = generate_token(VERIFIER_LENGTH)
    record = SessionStore()
    record[_PENDING_KEY] = {
        "provider": p.key,
        "user": user.pk,
        "verifier": crypto.encrypt(verifier),
        "redirect_uri": redirect_uri,
    }
    record.set_expiry(PENDING_SECONDS)
    record.create()  # a new random key, unique in the table: it is the state
    state = record.session_key
    assert state
    extra = dict(p.authorize_params)
    if login_hint:
        extra["login_hint"] = login_hint
    with _client(p) as client:
        url, _ = client.create_authorization_url(
            p.authorize_url, state=state, code_verifier=verifier, redirect_uri=redirect_uri, **extra
        )
    return url, state


def pending_authorization(state: str, user: AbstractBaseUser) -> PendingAuthorization:
    """The sign-in ``user`` started with ``state``; it can be taken once, within 10 minutes."""
    data = SessionStore(session_key=state).load().get(_PENDING_KEY) if state else None
    taken = Session.objects.filter(session_key=state).delete()[0] if state else 0
    if not data or not taken:
        raise AuthorizationFailed(
            "This sign-in has expired or was already used: start it again from the mailbox "
            "settings."
        )
    if data["user"] != user.pk:
        raise AuthorizationFailed(
            "This sign-in was started by someone else: start it again from your own mailbox "
            "settings."
        )
    return PendingAuthorization(
        provider=data["provider"],
        user_id=data["user"],
        verifier=crypto.decrypt(data["verifier"]),
        redirect_uri=data["redirect_uri"],
    )


def finish_authorization(
    provider_key: str,
    request_params: Mapping[str, str],
    state: str,
    verifier: str,
    redirect_uri: str,
) -> TokenSet:
    """Exchange the code the provider sent back (``request_params``: the callback's query)."""
    p = provider(provider_key)
    if not hmac.compare_digest(str(request_params.get("state") or ""), state):
        raise AuthorizationFailed(
            f"The answer from {p.name} does not belong to this sign-in: start it again."
        )
    error = str(request_params.get("error") or "")
    if error == "access_denied":
        raise AuthorizationFailed(
            f"Access was not granted at {p.name}, so crmail cannot read this mailbox: sign in "
            "again and allow access to connect it."
        )
    if error:
        raise AuthorizationFailed(f"{p.name} did not complete the sign-in ({error}): try again.")
    code = str(request_params.get("code") or "")
    if not code:
        raise AuthorizationFailed(f"{p.name} sent no authorization code back: try again.")
    try:
        with _client(p) as client:
            token = client.fetch_token(
                p.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
                redirect_uri=redirect_uri,
            )
        return TokenSet.from_response(p.key, token)
    except OAuthError as exc:
        raise AuthorizationFailed(
            f"{p.name} did not accept the sign-in ({exc.error}): start it again.",
        ) from None
    except requests.RequestException as exc:
        raise _network_error(p, exc, "finishing the sign-in") from None
    except ValueError:
        raise AuthorizationFailed(
            f"{p.name}'s sign-in server gave an answer crmail cannot read: try again.",
        ) from None


def complete_authorization(user: AbstractBaseUser, request_params: Mapping[str, str]) -> TokenSet:
    """The callback in one step: take the pending sign-in for its state and exchange the code."""
    state = str(request_params.get("state") or "")
    pending = pending_authorization(state, user)
    return finish_authorization(
        pending.provider, request_params, state, pending.verifier, pending.redirect_uri
    )


def store_tokens(mailbox: Mailbox, tokens: TokenSet) -> None:
    """Put fresh tokens on ``mailbox``: OAuth from now on, and re-authenticated if it was not."""
    mailbox.auth_method = AuthMethod.OAUTH2
    mailbox.access_token = tokens.access_token
    mailbox.access_token_expires_at = tokens.expires_at
    if tokens.refresh_token:
        mailbox.secret = tokens.refresh_token
    fields = ["auth_method", "access_token", "access_token_expires_at", "secret"]
    if mailbox.state == SyncState.NEEDS_REAUTH:
        mailbox.state = SyncState.COMPLETED if mailbox.last_sync_at else SyncState.NEW
        mailbox.last_error = ""
        mailbox.last_error_kind = ""
        fields += ["state", "last_error", "last_error_kind"]
    if mailbox.pk is None:
        mailbox.save()
    else:
        mailbox.save(update_fields=fields)


# -- access tokens -----------------------------------------------------------------------


def reauth_message(provider_name: str) -> str:
    return f"Access to this mailbox was withdrawn or has expired: sign in to {provider_name} again."


_locks_guard = threading.Lock()
_locks: dict[Any, threading.Lock] = {}


@contextlib.contextmanager
def _process_lock(pk: Any) -> Iterator[None]:
    """One refresh of a mailbox at a time in this process (threads of one worker)."""
    with _locks_guard:
        lock = _locks.setdefault(pk, threading.Lock())
    with lock:
        yield


def _usable(token: str, expires_at: datetime | None) -> bool:
    return bool(token) and expires_at is not None and expires_at - timezone.now() >= REFRESH_MARGIN


def access_token(mailbox: Mailbox) -> str:
    """An access token for ``mailbox`` valid for at least five more minutes.

    Refreshes it when needed (and stores it, with a rotated refresh token if the provider
    sent one). Raises ``AuthFailed`` (kind ``oauth_revoked``) when access was withdrawn,
    after marking the mailbox "needs re-authentication"; ``ConnectFailed`` when the provider
    cannot be reached; ``OAuthNotConfigured`` when the server has no client for it.
    """
    if mailbox.auth_method != AuthMethod.OAUTH2:
        raise ValueError("access_token() is for mailboxes that sign in with OAuth 2")
    if mailbox.state != SyncState.NEEDS_REAUTH and _usable(
        mailbox.access_token, mailbox.access_token_expires_at
    ):
        return mailbox.access_token
    with _process_lock(mailbox.pk):
        return _renew(mailbox)


def forget_access_token(mailbox: Mailbox) -> None:
    """The server refused the stored access token: renew it on the next ``access_token``.

    Only when it is still the token that was refused (its expiry unchanged), so a token
    another worker renewed meanwhile stays.
    """
    version = mailbox.access_token_expires_at
    if version is None:
        return
    now = timezone.now()
    Mailbox.objects.filter(pk=mailbox.pk, access_token_expires_at=version).update(
        access_token_expires_at=now
    )
    mailbox.access_token_expires_at = now


_FIELDS = (
    "access_token",
    "access_token_expires_at",
    "secret",
    "state",
    "last_error",
    "last_error_kind",
)


def _renew(mailbox: Mailbox) -> str:
    p = provider_for(mailbox)
    if not connection.features.has_select_for_update:
        return _renew_with_claim(mailbox, p)
    # PostgreSQL: the row lock makes a second worker wait, then find the fresh token.
    with transaction.atomic():
        row = Mailbox.objects.only(*_FIELDS).select_for_update().get(pk=mailbox.pk)
        token = _stored_token(row, mailbox, p)
        if token:
            return token
        version = row.access_token_expires_at
        tokens = _refresh_unless_revoked(p, row.secret)
        if tokens:
            return _save_refreshed(mailbox, p, version, tokens)
    return _mark_needs_reauth(mailbox, p, version)  # after the transaction: it must stay


LEASE_SECONDS = HTTP_TIMEOUT + 5  # a claim older than this is taken over (its worker died)
_POLL_SECONDS = 0.1
# A claimed refresh is marked by an expiry this far in the past (before 2000, which no
# real expiry is): the claim time minus _CLAIM_SHIFT, so its age can be read back.
_CLAIM_SHIFT = timedelta(days=365 * 50)
_CLAIMS_BEFORE = datetime(2000, 1, 1, tzinfo=UTC)


def _renew_with_claim(mailbox: Mailbox, p: Provider) -> str:
    """SQLite: no row locks, and a transaction would lock the whole database for the HTTP
    call. A worker claims the refresh instead, by a compare-and-set of the stored expiry to
    a claim mark; the others wait for the token it stores."""
    while True:
        row = Mailbox.objects.only(*_FIELDS).get(pk=mailbox.pk)
        token = _stored_token(row, mailbox, p)
        if token:
            return token
        version = row.access_token_expires_at
        claimed_by_other = version is not None and version < _CLAIMS_BEFORE
        if claimed_by_other and timezone.now() - (version + _CLAIM_SHIFT) < timedelta(
            seconds=LEASE_SECONDS
        ):
            _pause()
            continue
        claim = timezone.now() - _CLAIM_SHIFT
        if not Mailbox.objects.filter(pk=mailbox.pk, access_token_expires_at=version).update(
            access_token_expires_at=claim
        ):
            continue  # another worker moved first: look again
        try:
            tokens = _refresh_unless_revoked(p, row.secret)
        except BaseException:
            Mailbox.objects.filter(pk=mailbox.pk, access_token_expires_at=claim).update(
                access_token_expires_at=timezone.now() if claimed_by_other else version
            )
            raise
        if tokens:
            return _save_refreshed(mailbox, p, claim, tokens)
        return _mark_needs_reauth(mailbox, p, claim)


def _pause() -> None:
    time.sleep(_POLL_SECONDS)


def _stored_token(row: Mailbox, mailbox: Mailbox, p: Provider) -> str:
    """The stored access token when usable, "" when it needs renewing; raises when the
    mailbox already waits for its owner to sign in again."""
    if row.state == SyncState.NEEDS_REAUTH:
        _copy(row, mailbox)
        raise AuthFailed(row.last_error or reauth_message(p.name), kind="oauth_revoked")
    if _usable(row.access_token, row.access_token_expires_at):
        _copy(row, mailbox)
        return row.access_token
    return ""


def _refresh_unless_revoked(p: Provider, refresh_token: str) -> TokenSet | None:
    """New tokens, or None when the provider withdrew access (or there is no refresh token)."""
    if not refresh_token:
        return None
    try:
        return _refresh(p, refresh_token)
    except _Revoked:
        return None


class _Revoked(Exception):
    pass


def _refresh(p: Provider, refresh_token: str) -> TokenSet:
    try:
        with _client(p, for_refresh=True) as client:
            token = client.refresh_token(p.token_url, refresh_token=refresh_token)
        return TokenSet.from_response(p.key, token)
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            raise _Revoked from None
        if exc.error in ("invalid_client", "unauthorized_client"):
            raise AuthFailed(
                f"{p.name} refused crmail's OAuth client ({exc.error}): an administrator must "
                f"check CRMAIL_OAUTH_{p.key.upper()}_CLIENT_ID and _CLIENT_SECRET.",
                kind="oauth_client",
            ) from None
        detail = _scrub(str(exc.description or ""), refresh_token)
        raise AuthFailed(
            f"{p.name} did not renew access to this mailbox ({exc.error}"
            + (f": {detail}" if detail else "")
            + ").",
            kind="oauth_refresh",
        ) from None
    except requests.RequestException as exc:
        raise _network_error(p, exc, "renewing access to this mailbox") from None
    except ValueError:
        raise ConnectFailed(
            f"{p.name}'s sign-in server gave an answer crmail cannot read while renewing "
            "access to this mailbox: try again in a few minutes.",
            kind="protocol",
        ) from None


def _save_refreshed(
    mailbox: Mailbox, p: Provider, version: datetime | None, tokens: TokenSet
) -> str:
    """Store refreshed tokens unless another worker stored its own first (compare-and-set)."""
    fields: dict[str, Any] = {
        "access_token": tokens.access_token,
        "access_token_expires_at": tokens.expires_at,
    }
    if tokens.refresh_token:  # the provider rotated it
        fields["secret"] = tokens.refresh_token
    stored = Mailbox.objects.filter(pk=mailbox.pk, access_token_expires_at=version)
    if not stored.update(**fields):
        current = Mailbox.objects.only(*_FIELDS).get(pk=mailbox.pk)
        if _usable(current.access_token, current.access_token_expires_at):
            _copy(current, mailbox)  # another worker won: its token is the stored one
            return current.access_token
        Mailbox.objects.filter(pk=mailbox.pk).update(**fields)
    for name, value in fields.items():
        setattr(mailbox, name, value)
    logger.info("Renewed the access token of mailbox %s (%s).", mailbox.pk, p.key)
    return tokens.access_token


def _mark_needs_reauth(mailbox: Mailbox, p: Provider, version: datetime | None) -> str:
    """The provider withdrew access: tell the owner (on the mailbox), log, and raise."""
    message = reauth_message(p.name)
    fields: dict[str, Any] = {
        "state": SyncState.NEEDS_REAUTH,
        "last_error": message,
        "last_error_kind": "oauth_revoked",
        "access_token": "",
        "access_token_expires_at": None,
    }
    marked = Mailbox.objects.filter(pk=mailbox.pk, access_token_expires_at=version).update(**fields)
    if not marked:
        current = Mailbox.objects.only(*_FIELDS).get(pk=mailbox.pk)
        if current.state != SyncState.NEEDS_REAUTH and _usable(
            current.access_token, current.access_token_expires_at
        ):
            # Another worker renewed it meanwhile (with a newer refresh token): use that.
            _copy(current, mailbox)
            return current.access_token
        Mailbox.objects.filter(pk=mailbox.pk).update(**fields)
    for name, value in fields.items():
        setattr(mailbox, name, value)
    logger.warning(
        "Mailbox %s: %s withdrew access or it expired (invalid_grant); it needs its owner "
        "to sign in again.",
        mailbox.pk,
        p.name,
    )
    raise AuthFailed(message, kind="oauth_revoked")


def _copy(source: Mailbox, target: Mailbox) -> None:
    for name in _FIELDS:
        setattr(target, name, getattr(source, name))
