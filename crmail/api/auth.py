"""Who is calling: an API token (``Authorization: Bearer crm_…``) or, for pages of crmail
itself, the signed-in session with its CSRF check.

A request that sends an Authorization header is judged by that header alone: a bad token
is refused even when a session cookie comes along, so a script never silently acts as
whoever is signed in in the browser.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer, SessionAuth

from crmail.api.errors import Forbidden
from crmail.people.models import ApiToken, User

REFUSED = "The API token is not valid: it is unknown, revoked, or its user is deactivated."
NOT_BEARER = "The Authorization header must read 'Bearer <token>'."


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>`` checked against the stored token hashes."""

    def __call__(self, request: HttpRequest) -> User | None:
        # Replaces HttpBearer.__call__, which logs the whole header (the token) in DEBUG.
        value = request.headers.get(self.header)
        if not value:
            return None
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationError(message=NOT_BEARER)
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> User:
        user = ApiToken.authenticate(token)
        if user is None:
            raise AuthenticationError(message=REFUSED)
        request.user = user
        return user


class SignedInSession(SessionAuth):
    """The Django session, for crmail's own pages; unsafe methods need the CSRF token."""

    def _get_key(self, request: HttpRequest) -> str | None:
        # Without a session cookie there is nothing to check: answer 401, not a CSRF 403.
        if not request.COOKIES.get(self.param_name):
            return None
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        if not key:
            return None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            return user
        return None


token_auth = TokenAuth()
session_auth = SignedInSession(csrf=True)
AUTH = [token_auth, session_auth]


def current_user(request: HttpRequest) -> User:
    """The user the request was authenticated as."""
    return request.auth  # type: ignore[attr-defined,no-any-return]


def admin_user(request: HttpRequest, refusal: str) -> User:
    """The request's user, an administrator; ``Forbidden`` with ``refusal`` otherwise."""
    user = current_user(request)
    if not user.is_admin:
        raise Forbidden(refusal)
    return user
