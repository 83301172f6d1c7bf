"""A user's mailbox on the test Dovecot with one message synced into crmail, for the tests
of two-way actions (the page's, the API's, the writers')."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmail.mail.models import Message
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.models import Folder, Location, Mailbox
from crmail.mailboxes.sync import SyncReport, sync_mailbox
from crmail.mailboxes.tests.test_sync import mail
from crmail.people.models import User
from tests import factories as f


def sync(mailbox: Mailbox) -> SyncReport:
    driver = open_driver(mailbox)
    try:
        return sync_mailbox(mailbox, driver)
    finally:
        driver.close()


@dataclass
class Served:
    dovecot: Any
    login: str
    mailbox: Mailbox
    message: Message
    uid: int

    def folder(self, remote_id: str) -> Folder:
        return Folder.objects.get(mailbox=self.mailbox, remote_id=remote_id)

    def copies(self) -> list[tuple[str, bool, bool]]:
        """crmail's copies of the message: (folder, seen, flagged)."""
        return sorted(
            (loc.folder.remote_id, loc.seen, loc.flagged)
            for loc in Location.objects.filter(message=self.message).select_related("folder")
        )

    def on_server(self) -> list[tuple[str, bool, bool]]:
        """The server's copies of the message (doveadm): (folder, seen, flagged)."""
        found = []
        for name in self.dovecot.list_mailboxes(self.login):
            for m in self.dovecot.messages(self.login, name):
                if str(m["message_id"]).strip("<>") == self.message.message_id.strip("<>"):
                    flags = set(m["flags"])  # type: ignore[arg-type]
                    found.append((name, "\\Seen" in flags, "\\Flagged" in flags))
        return sorted(found)


def served(dovecot: Any, owner: User, subject: str = "Spring offer") -> Served:
    """``owner``'s mailbox with folders Archive and Trash and one unread message in INBOX."""
    login, password = dovecot.new_user()
    dovecot.create_mailbox(login, "Archive")
    dovecot.create_mailbox(login, "Trash")
    raw = mail(1, subject).replace(b"client1@example.com", b"carl@client.example")
    uid = dovecot.deliver(login, raw)
    mailbox = f.mailbox(dovecot, login, password, owner=owner)
    sync(mailbox)
    location = Location.objects.select_related("message").get(mailbox=mailbox, uid=uid)
    return Served(dovecot, login, mailbox, location.message, uid)
