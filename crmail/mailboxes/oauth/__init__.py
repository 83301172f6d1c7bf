"""OAuth 2 for mailboxes (SPEC F1), in three parts:

- ``providers``: the authorization servers crmail has a client with (Google, Microsoft,
  any configured NAME) and how it speaks to their token endpoints;
- ``signin``: signing in at the provider (authorization code with PKCE) and putting the
  tokens on the mailbox;
- ``refresh``: access tokens for XOAUTH2, renewed by one process at a time under a lease.

The names below are the ones the rest of crmail uses. See docs/decisions/007-oauth.md.
"""

from crmail.mailboxes.oauth.providers import (
    API_RESOURCE,
    MAIL_RESOURCE,
    PRESET_PROVIDERS,
    OAuthNotConfigured,
    Provider,
    TokenSet,
    configured_providers,
    endpoint_settings,
    provider,
    provider_for,
    resource_for,
)
from crmail.mailboxes.oauth.refresh import (
    access_token,
    forget_access_token,
    reauth_message,
    redeem_refresh_token,
)
from crmail.mailboxes.oauth.signin import (
    AuthorizationFailed,
    PendingAuthorization,
    complete_authorization,
    finish_authorization,
    pending_authorization,
    start_authorization,
    store_tokens,
)

__all__ = [
    "API_RESOURCE",
    "MAIL_RESOURCE",
    "PRESET_PROVIDERS",
    "AuthorizationFailed",
    "OAuthNotConfigured",
    "PendingAuthorization",
    "Provider",
    "TokenSet",
    "access_token",
    "complete_authorization",
    "configured_providers",
    "endpoint_settings",
    "finish_authorization",
    "forget_access_token",
    "pending_authorization",
    "provider",
    "provider_for",
    "reauth_message",
    "redeem_refresh_token",
    "resource_for",
    "start_authorization",
    "store_tokens",
]
