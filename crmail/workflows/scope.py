"""Whose mail a message is, and as what: incoming or outgoing, per mailbox owner.

For each active user holding a copy of a message (a ``Location`` in a mailbox they own) or
having sent it from crmail or through their BCC Dropbox (a ``SentMessage``):

- **outgoing** when it is in one of their Sent folders, was sent from crmail by them, or
  its From is one of their own addresses (their mailboxes' and their account's): mail
  sent from a phone counts before its Sent copy is synced, and Gmail's "All Mail" copy of
  sent mail is not taken for incoming mail;
- **incoming** when it is in another folder that receives mail (not Sent, Drafts, Trash,
  Junk or Outbox) and is not their own mail, or it is their own mail in their Inbox (a
  message to oneself is both);
- **dropbox** when it reached their BCC Dropbox address (a ``SentMessage`` with source
  "BCC Dropbox"): filed on its record in the transaction that saves its parse results, so
  a rule sees that link.

Only fresh copies count (``notifications.alerts.is_fresh``'s rule, as of when the copy was
stored): mail already on the server when the mailbox was connected, found by its first
sync, or old mail filed into a folder later is not new mail, and rules leave it alone.

"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from crmail.mail.models import Message
from crmail.mailboxes.models import Location, SentMessage, Source
from crmail.mailboxes.replies import own_addresses_of
from crmail.notifications.alerts import is_fresh
from crmail.workflows.spec import Trigger

NOT_RECEIVING = frozenset({"sent", "drafts", "trash", "junk", "outbox"})

# message id -> owner id -> triggers
Holders = dict[int, dict[int, set[Trigger]]]


def holders(message_ids: Iterable[int], *, fresh_only: bool = True) -> Holders:
    """Per message, each active owner whose mail it is and as what (module docstring).
    ``fresh_only=False`` (a dry run over past mail) counts every copy."""
    ids = list(dict.fromkeys(message_ids))
    if not ids:
        return {}
    froms = dict(Message.objects.filter(pk__in=ids).values_list("pk", "from_address"))
    roles: dict[tuple[int, int], set[str]] = defaultdict(set)
    rows = Location.objects.filter(message_id__in=ids, mailbox__owner__is_active=True).values_list(
        "message_id",
        "mailbox__owner_id",
        "folder__role",
        "created_at",
        "mailbox__created_at",
        "message__date",
    )
    for message_id, owner_id, role, stored_at, connected_at, date in rows:
        if fresh_only and not _fresh(stored_at, connected_at, date):
            continue
        roles[(message_id, owner_id)].add(role or "")
    sent: set[tuple[int, int]] = set()
    dropbox: set[tuple[int, int]] = set()
    for message_id, sender_id, source in SentMessage.objects.filter(
        message_id__in=ids, sender__is_active=True
    ).values_list("message_id", "sender_id", "source"):
        (dropbox if source == Source.DROPBOX else sent).add((message_id, sender_id))
    owners = {owner for _, owner in roles} | {owner for _, owner in sent | dropbox}
    own = own_addresses_of(owners)
    out: Holders = defaultdict(dict)
    for key in set(roles) | sent | dropbox:
        message_id, owner_id = key
        found = roles.get(key, set())
        mine = (froms.get(message_id) or "").lower() in own.get(owner_id, set())
        triggers: set[Trigger] = set()
        if "sent" in found or key in sent or (mine and found - NOT_RECEIVING):
            triggers.add(Trigger.OUTGOING)
        receiving = found - NOT_RECEIVING
        if receiving and (not mine or "inbox" in receiving):
            triggers.add(Trigger.INCOMING)
        if key in dropbox:
            triggers.add(Trigger.DROPBOX)
        if triggers:
            out[message_id][owner_id] = triggers
    return dict(out)


def _fresh(stored_at: datetime, connected_at: datetime, date: datetime | None) -> bool:
    return is_fresh(stored_at, connected_at, date, stored_at)
