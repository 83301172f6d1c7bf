"""Real mail for the intelligence tests, and who may open it.

Rex (a rep) syncs a mailbox and shares his mail with Mia, his manager, only: Pia (his
peer) and Eve (a manager of another branch) may view the records (public read) but not
Rex's mail. Jane Doe of Acme is a contact of Rex's with an open deal; a second, won deal
is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from itertools import count

from django.utils import timezone

from crmail.crm.models import Contact, Deal
from crmail.linking.models import Link
from crmail.mail.models import Message
from crmail.mailboxes.models import Mailbox
from crmail.people.models import ModuleDefault
from crmail.sharing import actions
from crmail.workflows.tests import build
from tests import factories as f

JANE = "jane@acme.test"
_seq = count(1)

COMPLAINT = (
    "Hello Rex,\n\nI am really angry. The delivery arrived broken again and nobody answered "
    "my calls. This is unacceptable and I am very disappointed with your service.\n\n"
    "-- \nJane Doe\nHead of Purchasing\nAcme Ltd\n+44 20 7946 0958\n"
)
QUESTION = "Hi Rex,\n\ncould you send me the price list for next year?\n\nJane\n"
MEETING = (
    "Hi Rex,\n\ncan we meet on 5 March at 14:30 to go through the contract?\n\n-- \nJane Doe\n"
)


@dataclass
class World:
    org: f.Org
    box: Mailbox
    jane: Contact
    deal: Deal
    won: Deal


def build_world(org: f.Org) -> World:
    for module in ("contacts", "deals", "accounts"):
        ModuleDefault.objects.update_or_create(module=module, defaults={"level": "public_read"})
    actions.set_sharing(None, org.rep, mode="public", share_with=[org.manager])
    account = f.account(org.rep, "Acme")
    jane = f.contact(org.rep, JANE, first_name="Jane", last_name="Doe", account=account)
    deal = f.deal(org.rep, "Acme renewal", account=account, contact=jane)
    won = f.deal(org.rep, "Acme pilot", "Closed Won", account=account, contact=jane)
    return World(org, build.mailbox(org.rep), jane, deal, won)


def raw(
    body: str,
    subject: str = "Delivery",
    sender: str = f"Jane Doe <{JANE}>",
    to: str = "rep@crmail.test",
    answers: Message | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = make_msgid(f"intel{next(_seq)}", "acme.test")
    if answers is not None:
        msg["In-Reply-To"] = answers.message_id
        msg["References"] = answers.message_id
    msg.set_content(body)
    return msg.as_bytes()


def receive(
    world: World,
    body: str,
    subject: str = "Delivery",
    *,
    deal: Deal | None = None,
    answers: Message | None = None,
) -> Message:
    """Mail from Jane reaching Rex's inbox as a sync brings it (linked to Jane by
    linking), put on ``deal`` by hand."""
    message = build.deliver(world.box, raw(body, subject, answers=answers))
    if deal is not None:
        Link.objects.get_or_create(
            message=message,
            module="deals",
            record_id=deal.pk,
            defaults={"reason": "manual", "date": message.date, "created_at": message.date},
        )
    return message
