"""What every page knows beyond the request: the signed-in user's mailbox alert, the
number of their unread notifications (the bell's badge), and for administrators the
webhooks crmail turned off. Each is read from the database only when the template shows
it (the full pages' top of page), not for the fragments htmx asks for."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from crmail.mailboxes.models import Mailbox, SyncState
from crmail.notifications import queries as notification_queries
from crmail.webhooks.actions import auto_disabled

ALERT_STATES = (SyncState.NEEDS_REAUTH, SyncState.ERROR)


def mailbox_alert(request: HttpRequest) -> dict[str, Any]:
    """The user's active mailbox when it needs them (signed out at the provider, or failing),
    so every page can say so: the owner hears of it without opening the mailbox page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def failing() -> Mailbox | None:
        return (
            Mailbox.objects.filter(owner=user, is_active=True, state__in=ALERT_STATES)
            .only("pk", "email", "state", "last_error")
            .first()
        )

    return {"mailbox_alert": SimpleLazyObject(failing)}


def webhook_alert(request: HttpRequest) -> dict[str, Any]:
    """Administrators see on every page the webhooks crmail turned off after repeated
    failure, until they turn them on again or delete them."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_admin:
        return {}
    return {"webhook_alert": SimpleLazyObject(auto_disabled)}


def notifications(request: HttpRequest) -> dict[str, Any]:
    """The bell's badge: the user's unread notifications, counted lazily (one indexed
    COUNT, only on pages that show the top bar)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": lambda: notification_queries.unread_count(user)}
