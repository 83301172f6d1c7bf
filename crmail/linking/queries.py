"""Reading links: a record's links and messages, and why each link is there (SPEC F4).

Everything here returns querysets built as one SQL statement, so the Emails lists page,
count and filter in the database. Who may see which message (SPEC F5) is the sharing
layer's question, asked on top of these.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q, QuerySet

from crmail.config import dates
from crmail.crm.models import Contact
from crmail.linking.models import Link, Module, Reason
from crmail.mail.models import Message
from crmail.people.models import User


def record_links(module: str, record_id: int) -> QuerySet[Link]:
    """The links that put mail on a record, newest first.

    Leads, Contacts and Deals: their own links. Accounts: their own links (manual, sent
    from the account) and the links of the contacts that belong to the account now.
    """
    if module not in Module.values:
        raise ValueError(f"No such module: {module!r}.")
    condition = Q(module=module, record_id=record_id)
    if module == Module.ACCOUNTS:
        contacts = Contact.objects.filter(account_id=record_id).values("pk")
        condition |= Q(module=Module.CONTACTS, record_id__in=contacts)
    return Link.objects.filter(condition).order_by("-date", "-pk")


def messages_for_record(module: str, record_id: int) -> QuerySet[Message]:
    """The distinct messages on a record, newest first (raw bytes are a table apart)."""
    linked = record_links(module, record_id).order_by().values("message_id")
    return Message.objects.filter(pk__in=linked).order_by("-date", "-pk")


def explain(link: Link, on: str | None = None) -> str:
    """Why ``link`` puts its message on the record viewed (module ``on``), in words.

    ``on`` is the module of the record being looked at, when it differs from the link's
    own (an account showing its contacts' mail).
    """
    return explanations([link], on)[0]


def explanations(links: Sequence[Link], on: str | None = None) -> list[str]:
    """``explain`` for many links, with two queries at most (contact and user names)."""
    contact_ids = {
        link.record_id for link in links if on == Module.ACCOUNTS and link.module == Module.CONTACTS
    }
    contacts = {
        pk: f"{first} {last}".strip()
        for pk, first, last in Contact.objects.filter(pk__in=contact_ids).values_list(
            "pk", "first_name", "last_name"
        )
    }
    user_ids = {link.created_by_id for link in links if link.created_by_id}
    users = dict(User.objects.filter(pk__in=user_ids).values_list("pk", "name"))
    return [_explain(link, on, contacts, users) for link in links]


def _explain(link: Link, on: str | None, contacts: dict[int, str], users: dict[int, str]) -> str:
    if on == Module.ACCOUNTS and link.module == Module.CONTACTS:
        name = contacts.get(link.record_id)
        return f"Linked through the contact {name}" if name else "Linked through a former contact"
    kind = Module(link.module).label.lower()
    who = users.get(link.created_by_id) if link.created_by_id else None
    if link.reason == Reason.ADDRESS:
        return f"Linked through {link.address}, an address of this {kind}"
    if link.reason == Reason.SENT_FROM_RECORD:
        return f"Sent from this {kind} in crmail"
    if link.reason == Reason.MANUAL:
        return f"Linked by {who or 'a former user'} on {dates.day(link.created_at)}"
    if link.reason == Reason.BCC_DROPBOX:
        return f"Sent to {who}'s BCC dropbox" if who else "Sent to a BCC dropbox"
    if link.reason == Reason.THREAD:
        return f"Part of a conversation already on this {kind}"
    if link.reason == Reason.WORKFLOW:
        return f"Linked by a workflow rule on {dates.day(link.created_at)}"
    return str(Reason(link.reason).label)
