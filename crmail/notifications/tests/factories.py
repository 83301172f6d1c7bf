"""Notifications made directly, for tests of the feed, the API and the pages."""

from __future__ import annotations

from crmail.linking.tests.mail import ingest, raw_mail
from crmail.notifications.models import Kind, Notification
from crmail.people.models import User


def notification(
    user: User, title: str = "New mail from Jane Quinn (Contact): Hello"
) -> Notification:
    """A customer-mail notification of a new stored message for ``user``."""
    (message,) = ingest(raw_mail("jane@acme.test", [user.email]), link=False)
    return Notification.objects.create(
        user=user,
        kind=Kind.CUSTOMER_MAIL,
        message=message,
        title=title,
        excerpt="Could you send the quote?",
    )
