"""The one way crmail checks a password: Django's model backend behind the rate limiter.

``RateLimitedBackend`` is the only authentication backend, so every
``django.contrib.auth.authenticate`` call — the sign-in page, the back office's password
change, anything added later — reserves its place in ``crmail.people.ratelimit`` before
the password hash is computed. When the client address or the account is locked it raises
``SignInLocked`` (not ``PermissionDenied``, which ``authenticate`` would swallow), so the
caller can say in words for how long; every caller catches it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from crmail.people import ratelimit


def client_address(request: HttpRequest | None) -> str:
    """The client's IP: the peer's, or the one a trusted proxy forwarded (crmail.config.proxy)."""
    if request is None:
        return ""
    return request.META.get("REMOTE_ADDR", "") or ""


class RateLimitedBackend(ModelBackend):
    """Email and password, checked only when the limiter lets the attempt through."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        attempt = ratelimit.reserve(username, client_address(request))  # or SignInLocked
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            attempt.succeeded()
        # Otherwise the reserved row stays: it is the failure.
        return user
