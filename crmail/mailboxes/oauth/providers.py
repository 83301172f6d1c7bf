"""The OAuth 2 authorization servers crmail has a client registration with, and how it
speaks to their token endpoints (both sign-in and refresh use this).

Providers come from settings or the environment: ``CRMAIL_OAUTH_GOOGLE_CLIENT_ID`` and
``_SECRET``; ``CRMAIL_OAUTH_MICROSOFT_CLIENT_ID``, ``_SECRET`` and ``_TENANT`` (default
``common``), their endpoints moved with ``CRMAIL_OAUTH_GOOGLE_AUTHORIZE_URL``,
``_TOKEN_URL`` and ``CRMAIL_OAUTH_MICROSOFT_AUTHORIZE_URL``, ``_TOKEN_URL`` (a local
stand-in, a proxy); and any other NAME with ``CRMAIL_OAUTH_<NAME>_AUTHORIZE_URL``, ``_TOKEN_URL``,
``_CLIENT_ID``, ``_CLIENT_SECRET`` (empty for a public client), ``_SCOPES`` (space- or
comma-separated), and optionally ``_LABEL`` (the name users see) and ``_TOKEN_AUTH``
(``client_secret_basic``, the default, or ``client_secret_post``). A mailbox names its
provider in ``Mailbox.provider``: the presets ``gmail`` and ``outlook`` use Google and
Microsoft, any other value is the NAME of a configured provider.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.utils import timezone

from crmail.mailboxes.drivers.base import ConnectFailed, DriverError
from crmail.mailboxes.models import Mailbox, Protocol

DEFAULT_LIFETIME = timedelta(hours=1)  # when the provider does not say (expires_in)
HTTP_TIMEOUT = 20.0  # seconds, for each call to a token endpoint

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
# The APIs: Gmail API (read, label, trash, send; labels created) and Microsoft Graph. A
# Microsoft access token is for one resource, so a Graph token does not open IMAP or SMTP
# (outlook.office.com) and the other way round; Graph wants its resource in each scope.
GOOGLE_API_SCOPES = (
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.labels",
)
GRAPH_SCOPES = (
    "https://graph.microsoft.com/Mail.ReadWrite",
    "https://graph.microsoft.com/Mail.Send",
    "offline_access",
)
API_PROTOCOLS = (Protocol.GMAIL, Protocol.GRAPH)
MAIL_RESOURCE = "mail"  # IMAP, POP3 and SMTP (XOAUTH2)
API_RESOURCE = "api"  # the provider's mail API (Gmail API, Microsoft Graph)
PRESET_PROVIDERS = {"gmail": "google", "outlook": "microsoft"}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
_CUSTOM_SETTING = re.compile(r"^CRMAIL_OAUTH_([A-Z][A-Z0-9_]*)_TOKEN_URL$")


class OAuthNotConfigured(DriverError):
    """The server has no OAuth client for this provider (an administrator's setting)."""

    kind = "oauth_unconfigured"


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
    api_scopes: tuple[str, ...] = ()  # for the provider's mail API, when it has one

    def scopes_for(self, resource: str) -> tuple[str, ...]:
        """The scopes to ask for a token for ``resource`` (``MAIL_RESOURCE``/``API_RESOURCE``)."""
        if resource == API_RESOURCE:
            if not self.api_scopes:
                raise OAuthNotConfigured(f"{self.name} has no mail API crmail can use.")
            return self.api_scopes
        return self.scopes


def resource_for(protocol: str) -> str:
    """Which token a mailbox of ``protocol`` signs in with: its API's, or IMAP/POP/SMTP's."""
    return API_RESOURCE if protocol in API_PROTOCOLS else MAIL_RESOURCE


def _setting(name: str) -> str:
    """``name`` from Django's settings, else from the environment (read at each call)."""
    value = getattr(settings, name, None)
    if value is None or value == "":
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
            _setting("CRMAIL_OAUTH_GOOGLE_AUTHORIZE_URL") or GOOGLE_AUTHORIZE_URL,
            _setting("CRMAIL_OAUTH_GOOGLE_TOKEN_URL") or GOOGLE_TOKEN_URL,
            GOOGLE_SCOPES,
            {"access_type": "offline", "prompt": "consent"},
            scope_on_refresh=False,
            api_scopes=GOOGLE_API_SCOPES,
        )
    if key == "microsoft":
        tenant = _setting("CRMAIL_OAUTH_MICROSOFT_TENANT") or "common"
        authority = MICROSOFT_AUTHORITY.format(tenant=tenant)
        return _known(
            key,
            "Microsoft",
            _setting("CRMAIL_OAUTH_MICROSOFT_AUTHORIZE_URL") or f"{authority}/authorize",
            _setting("CRMAIL_OAUTH_MICROSOFT_TOKEN_URL") or f"{authority}/token",
            MICROSOFT_SCOPES,
            {},
            scope_on_refresh=True,
            api_scopes=GRAPH_SCOPES,
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
    api_scopes: tuple[str, ...],
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
        api_scopes=api_scopes,
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


def endpoint_settings() -> list[tuple[str, str]]:
    """(setting, value) for each provider or API endpoint moved from its default (for
    ``crmail check``): a national cloud, a proxy, or a local stand-in."""
    names = (
        "CRMAIL_OAUTH_GOOGLE_AUTHORIZE_URL",
        "CRMAIL_OAUTH_GOOGLE_TOKEN_URL",
        "CRMAIL_GMAIL_API_URL",
        "CRMAIL_OAUTH_MICROSOFT_AUTHORIZE_URL",
        "CRMAIL_OAUTH_MICROSOFT_TOKEN_URL",
        "CRMAIL_GRAPH_API_URL",
    )
    return [(name, _setting(name)) for name in names if _setting(name)]


# -- the token endpoint ------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint gave: the tokens themselves are left out of the repr."""

    provider: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)  # empty when the provider sent none
    expires_at: datetime
    scope: str = ""
    token_type: str = "Bearer"  # noqa: S105 (a type name)
    resource: str = MAIL_RESOURCE  # what the access token opens (``resource_for``)

    @classmethod
    def from_response(
        cls, provider_key: str, token: Mapping[str, Any], resource: str = MAIL_RESOURCE
    ) -> TokenSet:
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
            resource=resource,
        )


def client(
    p: Provider, *, for_refresh: bool = False, resource: str = MAIL_RESOURCE
) -> OAuth2Session:
    """An authlib session for ``p``'s endpoints (PKCE S256, crmail's timeout), asking for
    a token for ``resource``."""
    scope = " ".join(p.scopes_for(resource)) or None
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


def network_error(p: Provider, exc: requests.RequestException, doing: str) -> ConnectFailed:
    """``exc`` (talking to ``p`` while ``doing`` something) in words."""
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
