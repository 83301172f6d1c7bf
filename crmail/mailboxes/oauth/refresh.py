"""Access tokens for XOAUTH2: the stored one while it lasts, else renewed, by one process.

``access_token`` gives a token valid for at least five more minutes. Renewing it with the
refresh token is *claimed* first, through the lease ``mailbox-token:<id>``
(``jobs.leases``): one process asks the provider while the others wait for the token it
stores, so a single-use refresh token is never spent twice. A claim lapses after one token
request's time (``CLAIM_TTL``), at once when its holder on this machine is gone, so a
crashed refresher blocks nobody for long. Threads of one process also share a lock per
mailbox, and every store is a compare-and-set on the expiry read before the request.

When the provider answers ``invalid_grant`` the mailbox becomes "needs re-authentication"
with the reason in ``last_error``, which the owner sees on the mailbox; a warning is
logged. Tokens never appear in logs, messages or reprs. See docs/decisions/007-oauth.md
and 039-driver-contract.md.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import requests
from authlib.integrations.base_client.errors import OAuthError
from django.utils import timezone

from crmail.jobs import leases
from crmail.mailboxes.drivers.base import AuthFailed, ConnectFailed
from crmail.mailboxes.models import AuthMethod, Mailbox, SyncState
from crmail.mailboxes.oauth.providers import (
    HTTP_TIMEOUT,
    Provider,
    TokenSet,
    client,
    network_error,
    provider,
    provider_for,
    resource_for,
)

logger = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)  # a token with less left than this is renewed first
CLAIM_TTL = timedelta(seconds=HTTP_TIMEOUT + 5)  # one token request, with room to store it
WAIT_SECONDS = 0.1  # between two looks at a refresh another process claimed

_FIELDS = (
    "access_token",
    "access_token_expires_at",
    "access_token_resource",
    "secret",
    "state",
    "last_error",
    "last_error_kind",
)


def reauth_message(provider_name: str) -> str:
    return f"Access to this mailbox was withdrawn or has expired: sign in to {provider_name} again."


def refresh_lease(mailbox_id: int) -> str:
    """The lease whose holder renews the mailbox's access token."""
    return f"mailbox-token:{mailbox_id}"


def access_token(mailbox: Mailbox) -> str:
    """An access token for ``mailbox`` valid for at least five more minutes.

    Refreshes it when needed (and stores it, with a rotated refresh token if the provider
    sent one). Raises ``AuthFailed`` (kind ``oauth_revoked``) when access was withdrawn,
    after marking the mailbox "needs re-authentication"; ``ConnectFailed`` when the provider
    cannot be reached; ``OAuthNotConfigured`` when the server has no client for it.
    """
    if mailbox.auth_method != AuthMethod.OAUTH2:
        raise ValueError("access_token() is for mailboxes that sign in with OAuth 2")
    if mailbox.state != SyncState.NEEDS_REAUTH and _usable_for(mailbox):
        return str(mailbox.access_token)
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


def _usable_for(row: Mailbox) -> bool:
    """The stored token lasts and opens what the mailbox's protocol needs (a Graph token
    is no use to IMAP, nor an IMAP one to Graph: Microsoft issues each for one resource)."""
    resource = row.access_token_resource
    return resource in ("", resource_for(row.protocol)) and _usable(
        row.access_token, row.access_token_expires_at
    )


def _renew(mailbox: Mailbox) -> str:
    """The stored token when another process renewed it, else a new one, under the claim."""
    p = provider_for(mailbox)
    name, holder = refresh_lease(mailbox.pk), leases.unique_identity()
    while True:
        token = _stored_token(_row(mailbox), mailbox, p)
        if token:
            return token
        if leases.acquire(name, holder, CLAIM_TTL):
            break
        _wait()  # another process renews it: its token is stored soon
    try:
        row = _row(mailbox)  # stored by the holder this one waited for?
        token = _stored_token(row, mailbox, p)
        if token:
            return token
        version = row.access_token_expires_at
        tokens = _refresh_unless_revoked(p, row.secret, resource_for(row.protocol))
        if tokens is None:
            return _mark_needs_reauth(mailbox, p, version)
        return _save_refreshed(mailbox, p, version, tokens)
    finally:
        leases.release(name, holder)


def _row(mailbox: Mailbox) -> Mailbox:
    return Mailbox.objects.only("protocol", *_FIELDS).get(pk=mailbox.pk)


def _wait() -> None:
    time.sleep(WAIT_SECONDS)


def _stored_token(row: Mailbox, mailbox: Mailbox, p: Provider) -> str:
    """The stored access token when usable, "" when it needs renewing; raises when the
    mailbox already waits for its owner to sign in again."""
    if row.state == SyncState.NEEDS_REAUTH:
        _copy(row, mailbox)
        raise AuthFailed(row.last_error or reauth_message(p.name), kind="oauth_revoked")
    if _usable_for(row):
        _copy(row, mailbox)
        return str(row.access_token)
    return ""


def _refresh_unless_revoked(p: Provider, refresh_token: str, resource: str) -> TokenSet | None:
    """New tokens, or None when the provider withdrew access (or there is no refresh token)."""
    if not refresh_token:
        return None
    try:
        return _refresh(p, refresh_token, resource)
    except _Revoked:
        return None


class _Revoked(Exception):
    pass


def redeem_refresh_token(provider_key: str, refresh_token: str, resource: str) -> TokenSet:
    """Tokens from a refresh token obtained elsewhere (moving from another tool): one
    refresh at the provider proves it and gives the first access token for ``resource``.
    The refresh token in the answer is the one to keep (the provider may rotate it)."""
    p = provider(provider_key)
    try:
        tokens = _refresh(p, refresh_token, resource)
    except _Revoked:
        raise AuthFailed(
            f"{p.name} refused this refresh token (invalid_grant): it was revoked, has "
            f"expired, or was issued to another OAuth client than this server's "
            f"(CRMAIL_OAUTH_{p.key.upper()}_CLIENT_ID). Get a new one for this client.",
            kind="oauth_revoked",
        ) from None
    if tokens.refresh_token:
        return tokens
    return replace(tokens, refresh_token=refresh_token)


def _refresh(p: Provider, refresh_token: str, resource: str) -> TokenSet:
    try:
        with client(p, for_refresh=True, resource=resource) as session:
            token = session.refresh_token(p.token_url, refresh_token=refresh_token)
        return TokenSet.from_response(p.key, token, resource)
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
        raise network_error(p, exc, "renewing access to this mailbox") from None
    except ValueError:
        raise ConnectFailed(
            f"{p.name}'s sign-in server gave an answer crmail cannot read while renewing "
            "access to this mailbox: try again in a few minutes.",
            kind="protocol",
        ) from None


def _scrub(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "…")
    return text


def _save_refreshed(
    mailbox: Mailbox, p: Provider, version: datetime | None, tokens: TokenSet
) -> str:
    """Store refreshed tokens unless another worker stored its own first (compare-and-set:
    a claim that lapsed during a very slow request)."""
    fields: dict[str, Any] = {
        "access_token": tokens.access_token,
        "access_token_expires_at": tokens.expires_at,
        "access_token_resource": tokens.resource,
    }
    if tokens.refresh_token:  # the provider rotated it
        fields["secret"] = tokens.refresh_token
    stored = Mailbox.objects.filter(pk=mailbox.pk, access_token_expires_at=version)
    if not stored.update(**fields):
        current = _row(mailbox)
        if _usable_for(current):
            _copy(current, mailbox)  # another worker won: its token is the stored one
            return str(current.access_token)
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
        current = _row(mailbox)
        if current.state != SyncState.NEEDS_REAUTH and _usable_for(current):
            # Another worker renewed it meanwhile (with a newer refresh token): use that.
            _copy(current, mailbox)
            return str(current.access_token)
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
