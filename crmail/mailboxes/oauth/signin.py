"""Signing in at the provider: the authorization code flow with PKCE (RFC 7636, S256).

``start_authorization`` gives the URL to send the user to and keeps the code verifier on
the server, in a short-lived record of Django's database session store whose key is the
``state``; the callback calls ``complete_authorization`` (or ``pending_authorization`` then
``finish_authorization``), and ``store_tokens`` puts the tokens on the mailbox. Tokens
never appear in logs, messages or reprs. See docs/decisions/007-oauth.md.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session

from crmail.config import crypto
from crmail.mailboxes.drivers.base import AuthFailed
from crmail.mailboxes.models import AuthMethod, Mailbox, SyncState
from crmail.mailboxes.oauth.providers import (
    MAIL_RESOURCE,
    TokenSet,
    client,
    network_error,
    provider,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

PENDING_SECONDS = 10 * 60  # how long a started sign-in may take
VERIFIER_LENGTH = 64  # PKCE code verifier: 43 to 128 characters (RFC 7636 §4.1)
_PENDING_KEY = "crmail_oauth_pending"


class AuthorizationFailed(AuthFailed):
    """Signing in at the provider did not give tokens: declined, expired, or refused."""

    kind = "oauth_failed"


@dataclass(frozen=True)
class PendingAuthorization:
    """A started sign-in, as kept on the server until the provider sends the user back."""

    provider: str
    user_id: Any
    verifier: str = field(repr=False)
    redirect_uri: str
    resource: str = MAIL_RESOURCE  # which token was asked for (``providers.resource_for``)


def start_authorization(
    provider_key: str,
    user: AbstractBaseUser,
    redirect_uri: str,
    *,
    login_hint: str = "",
    resource: str = MAIL_RESOURCE,
) -> tuple[str, str]:
    """(URL to send ``user`` to, state). The PKCE verifier stays on the server.

    ``resource`` says which access the sign-in asks: IMAP/POP/SMTP's (``MAIL_RESOURCE``)
    or the provider's mail API's (``API_RESOURCE``), each with its own scopes."""
    p = provider(provider_key)
    p.scopes_for(resource)  # a provider without an API says so before the user leaves
    verifier = generate_token(VERIFIER_LENGTH)
    record = SessionStore()
    record[_PENDING_KEY] = {
        "provider": p.key,
        "user": user.pk,
        "verifier": crypto.encrypt(verifier),
        "redirect_uri": redirect_uri,
        "resource": resource,
    }
    record.set_expiry(PENDING_SECONDS)
    record.create()  # a new random key, unique in the table: it is the state
    state = record.session_key
    assert state
    extra = dict(p.authorize_params)
    if login_hint:
        extra["login_hint"] = login_hint
    with client(p, resource=resource) as session:
        url, _ = session.create_authorization_url(
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
        resource=data.get("resource") or MAIL_RESOURCE,
    )


def finish_authorization(
    provider_key: str,
    request_params: Mapping[str, str],
    state: str,
    verifier: str,
    redirect_uri: str,
    *,
    resource: str = MAIL_RESOURCE,
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
        with client(p, resource=resource) as session:
            token = session.fetch_token(
                p.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
                redirect_uri=redirect_uri,
            )
        return TokenSet.from_response(p.key, token, resource)
    except OAuthError as exc:
        raise AuthorizationFailed(
            f"{p.name} did not accept the sign-in ({exc.error}): start it again.",
        ) from None
    except requests.RequestException as exc:
        raise network_error(p, exc, "finishing the sign-in") from None
    except ValueError:
        raise AuthorizationFailed(
            f"{p.name}'s sign-in server gave an answer crmail cannot read: try again.",
        ) from None


def complete_authorization(user: AbstractBaseUser, request_params: Mapping[str, str]) -> TokenSet:
    """The callback in one step: take the pending sign-in for its state and exchange the code."""
    state = str(request_params.get("state") or "")
    pending = pending_authorization(state, user)
    return finish_authorization(
        pending.provider,
        request_params,
        state,
        pending.verifier,
        pending.redirect_uri,
        resource=pending.resource,
    )


def store_tokens(mailbox: Mailbox, tokens: TokenSet) -> None:
    """Put fresh tokens on ``mailbox``: OAuth from now on, and re-authenticated if it was not."""
    mailbox.auth_method = AuthMethod.OAUTH2
    mailbox.access_token = tokens.access_token
    mailbox.access_token_expires_at = tokens.expires_at
    mailbox.access_token_resource = tokens.resource
    if tokens.refresh_token:
        mailbox.secret = tokens.refresh_token
    fields = [
        "auth_method",
        "access_token",
        "access_token_expires_at",
        "access_token_resource",
        "secret",
    ]
    if mailbox.state == SyncState.NEEDS_REAUTH:
        mailbox.state = SyncState.COMPLETED if mailbox.last_sync_at else SyncState.NEW
        mailbox.last_error = ""
        mailbox.last_error_kind = ""
        fields += ["state", "last_error", "last_error_kind"]
    if mailbox.pk is None:
        mailbox.save()
    else:
        mailbox.save(update_fields=fields)
