"""One contact's mail seen from four viewpoints (SPEC F5), for the Emails list tests.

Karl manages Mark and Claire (peers); Olga manages another branch. Contacts are public
read, so all four may open Jane (owned by Mark). Mark shares his mail with Claire only;
Claire keeps hers private; Pat syncs over POP3 and shares with everyone.

=========== ============================ ==========================================
message     where it lies                seen on Jane by
=========== ============================ ==========================================
first       Mark's IMAP inbox (thread T) Mark, Claire, Karl (his manager)
reply       Mark's IMAP inbox (thread T) Mark, Claire, Karl
claires     Claire's IMAP inbox (thr. T) Claire only
sent        sent by Mark from crmail     everyone
popped      Pat's POP3 mailbox           everyone
=========== ============================ ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass

from crmail.crm.models import Contact
from crmail.mail.models import Message, Thread
from crmail.people.models import ModuleDefault, User
from crmail.sharing import actions
from crmail.sharing.tests.build import mailbox, message
from tests import factories as f

CUSTOMER = "jane@customer.test"


@dataclass
class Scene:
    karl: User
    mark: User
    claire: User
    olga: User
    pat: User
    jane: Contact
    first: Message
    reply: Message
    claires: Message
    sent: Message
    popped: Message

    def ids(self, *names: str) -> set[int]:
        return {getattr(self, name).pk for name in names}


def scene(org: f.Org) -> Scene:
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    karl, mark, claire, olga = org.manager, org.rep, org.peer, org.outsider_manager
    pat = f.user("pat@crmail.test", name="Pat Pop", manager=karl)
    mailbox(pat, protocol="pop3")
    jane = f.contact(mark, CUSTOMER, first_name="Jane", last_name="Doe")
    actions.set_sharing(None, mark, mode="public", share_with=[claire])
    actions.set_sharing(None, claire, mode="private")
    thread = Thread.objects.create(subject="Offer")
    first = message(CUSTOMER, [mark.email], on=[jane], in_mailboxes=[mark])
    reply = message(mark.email, [CUSTOMER], on=[jane], in_mailboxes=[mark])
    claires = message(CUSTOMER, [claire.email], on=[jane], in_mailboxes=[claire])
    sent = message(mark.email, [CUSTOMER], on=[jane], sent_by=mark)
    popped = message(CUSTOMER, [pat.email], on=[jane], in_mailboxes=[pat])
    Message.objects.filter(pk__in=[first.pk, reply.pk, claires.pk]).update(thread=thread)
    Message.objects.filter(pk=popped.pk).update(has_attachments=True, snippet="See attached")
    Message.objects.filter(pk=sent.pk).update(snippet="Our offer, as promised")
    for m, sender in ((first, CUSTOMER), (reply, mark.email), (claires, CUSTOMER)):
        Message.objects.filter(pk=m.pk).update(from_address=sender, from_name="")
    Message.objects.filter(pk=sent.pk).update(from_address=mark.email)
    Message.objects.filter(pk=popped.pk).update(from_address=CUSTOMER, from_name="Jane Doe")
    for m in (first, reply, claires, sent, popped):
        m.refresh_from_db()
    return Scene(karl, mark, claire, olga, pat, jane, first, reply, claires, sent, popped)
