"""With the IDLE watcher running as in ``crmail worker``, mail a contact delivers to the
watched Inbox becomes a notification by itself: no sync is asked for."""

from __future__ import annotations

import pytest

from crmail.mailboxes.tests.test_watcher import eventually, synced_mailbox, watchers  # noqa: F401
from crmail.notifications.models import Notification
from crmail.notifications.tests.test_alerts import mail
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_watcher_turns_a_contacts_mail_into_a_notification(dovecot, dovecot_user, watchers):  # noqa: F811
    login, password = dovecot_user
    rep = f.user("rep@crmail.test", name="Rex Rep")
    f.contact(rep, "jane@acme.test", first_name="Jane", last_name="Quinn")
    mailbox = synced_mailbox(dovecot, login, password, owner=rep)
    watcher = watchers()
    eventually(lambda: mailbox.pk in watcher.watching(), "the mailbox is watched")

    dovecot.deliver(login, mail("Jane Quinn <jane@acme.test>", subject="Call me"))

    row = eventually(
        lambda: Notification.objects.filter(user=rep).first(), "the notification appears"
    )
    assert row.title == "New mail from Jane Quinn (Contact): Call me"
    assert Notification.objects.count() == 1
