"""A sender with a mailbox whose SMTP server is a test sink, and tracking switched on."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from crmail.insights.models import InsightsSetting
from crmail.mail.compose import Draft
from crmail.mailboxes.models import Mailbox
from crmail.people.models import User
from tests import factories as f

PUBLIC = "https://crm.example.com"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)


@dataclass
class Sender:
    user: User
    mailbox: Mailbox
    sink: Any


def sender(sink: Any, email: str = "rep@crmail.test") -> Sender:
    user = f.user(email)
    mailbox = Mailbox.objects.create(
        owner=user,
        email=email,
        protocol="imap",
        host="127.0.0.1",
        port=9,
        security="none",
        login=email,
        secret="x",
        smtp_host="127.0.0.1",
        smtp_port=sink.port,
        smtp_security="none",
        smtp_same_credentials=False,
        store_sent_on_server=False,
    )
    return Sender(user, mailbox, sink)


def switch_on(by: User | None = None) -> None:
    InsightsSetting.objects.update_or_create(pk=1, defaults={"tracking": True, "updated_by": by})


def draft(**kw: Any) -> Draft:
    return Draft(
        **{
            "sender": "rep@crmail.test",
            "to": ["ann@acme.example"],
            "subject": "The offer",
            "text": "See https://acme.example/offer?id=7&x=1 today.",
            **kw,
        }
    )


def parsed(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def html_of(raw: bytes) -> str:
    body = parsed(raw).get_body(("html",))
    return body.get_content() if body is not None else ""  # type: ignore[union-attr]


def inbound(rep: Sender, raw_from: str, *, date: str, in_reply_to: str = "") -> Any:
    """A message ``raw_from`` wrote to ``rep``, stored in ``rep``'s Inbox (their own mail)."""
    from email.message import EmailMessage as Built

    from crmail.mail.ingest import parse_stored
    from crmail.mail.store import store_raw
    from crmail.mailboxes.models import Folder, Location

    msg = Built()
    msg["From"] = raw_from
    msg["To"] = rep.mailbox.email
    msg["Subject"] = "Re: The offer"
    msg["Date"] = date
    msg["Message-ID"] = f"<{abs(hash((raw_from, date)))}@acme.example>"
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = f"<{in_reply_to.strip('<>')}>"
    msg.set_content("Thanks, looks good.")
    stored = store_raw(msg.as_bytes())
    parse_stored([stored])
    folder, _ = Folder.objects.get_or_create(
        mailbox=rep.mailbox, remote_id="INBOX", defaults={"name": "Inbox", "role": "inbox"}
    )
    Location.objects.create(
        mailbox=rep.mailbox, folder=folder, message=stored, remote_id=str(stored.pk), uid=stored.pk
    )
    stored.refresh_from_db()
    return stored
