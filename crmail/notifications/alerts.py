"""Customer mail alerts (SPEC F7): mail from a lead or contact reaching a watched Inbox tells
the mailbox's owner at once.

A message is told of when all of these hold (decision 033):
- it is linked to a Lead or Contact by an address (not by hand, not by a thread) and its
  From is one of that record's addresses: the customer wrote it, not a colleague who
  copied them, nor the owner;
- it lies in an Inbox-role folder of a mailbox whose ``customer_alerts`` is on, of an
  active owner;
- it arrived fresh, not old mail found by a first sync or by linking a record's past mail:
  its ``Location`` was made at most ``FRESH_LOCATION`` before the event, its date is
  within ``DATE_WINDOW`` of that, and it is dated no earlier than ``CONNECT_SLACK``
  before the mailbox was connected (mail already there when the mailbox was connected is
  old mail, however recent).

The owner must be able to view the record to see its name; otherwise only the address is
named. Everything here writes rows in crmail's database (the caller's transaction): the
unique (user, message, kind) makes an event handled twice add nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from crmail.crm.models import RECORD_MODELS, EmailAddress
from crmail.linking.models import Link, Module, Reason
from crmail.mail.models import Message, Participant
from crmail.mailboxes.models import LiveMail, Location, Mailbox
from crmail.notifications.models import Kind, Notification
from crmail.people import access
from crmail.people.models import User

FRESH_LOCATION = timedelta(hours=1)
DATE_WINDOW = timedelta(days=1)
CONNECT_SLACK = timedelta(minutes=15)
PERSON_MODULES = (Module.CONTACTS.value, Module.LEADS.value)  # contacts named first
TITLE_LIMIT = Notification._meta.get_field("title").max_length or 400
NO_SUBJECT = "(no subject)"


@dataclass(frozen=True)
class Candidate:
    """A message on a Lead or Contact, as of an event recorded at ``at``."""

    message_id: int
    module: str
    record_id: int
    at: datetime


def linked_in_inbox(received: dict[int, datetime]) -> list[Candidate]:
    """Candidates for messages whose copy just arrived in an Inbox (message id -> when) and
    that were linked before (the same message stored earlier for another mailbox)."""
    rows = Link.objects.filter(
        message_id__in=list(received), module__in=PERSON_MODULES, reason=Reason.ADDRESS
    ).values_list("message_id", "module", "record_id")
    return [Candidate(m, module, r, received[m]) for m, module, r in rows]


def is_fresh(
    location_at: datetime, mailbox_at: datetime, date: datetime | None, event_at: datetime
) -> bool:
    """The rule of the module docstring for one copy of a message."""
    if date is None or location_at < event_at - FRESH_LOCATION:
        return False
    if abs(date - location_at) > DATE_WINDOW:
        return False
    return date >= mailbox_at - CONNECT_SLACK


def notify(candidates: Iterable[Candidate]) -> int:
    """Write the notifications ``candidates`` call for; the number of rows offered (those
    that existed already are skipped)."""
    wanted = [c for c in candidates if c.module in PERSON_MODULES]
    if not wanted:
        return 0
    message_ids = {c.message_id for c in wanted}
    copies = _inbox_copies(message_ids)
    if not copies:
        return 0
    froms = _senders({m for m in copies})
    on_record = _sent_by_record(wanted, froms)
    # (owner, message) -> the candidate told of; contacts before leads.
    told: dict[tuple[int, int], tuple[Candidate, str]] = {}
    for c in sorted(wanted, key=lambda c: (PERSON_MODULES.index(c.module), c.record_id)):
        address = on_record.get((c.module, c.record_id, c.message_id))
        if address is None:
            continue
        for owner_id, location_at, mailbox_at, date in copies.get(c.message_id, ()):
            if is_fresh(location_at, mailbox_at, date, c.at):
                told.setdefault((owner_id, c.message_id), (c, address))
    if not told:
        return 0
    return _write(told)


def _inbox_copies(
    message_ids: set[int],
) -> dict[int, list[tuple[int, datetime, datetime, datetime | None]]]:
    """Per message: (owner, copy made, mailbox connected, message date) of its copies in
    alerting Inboxes of active owners."""
    rows = Location.objects.filter(
        message_id__in=list(message_ids),
        folder__role="inbox",
        mailbox__customer_alerts=True,
        mailbox__owner__is_active=True,
    ).values_list(
        "message_id", "mailbox__owner_id", "created_at", "mailbox__created_at", "message__date"
    )
    copies: dict[int, list[tuple[int, datetime, datetime, datetime | None]]] = defaultdict(list)
    for message_id, owner_id, location_at, mailbox_at, date in rows:
        copies[message_id].append((owner_id, location_at, mailbox_at, date))
    return copies


def _senders(message_ids: set[int]) -> dict[int, set[str]]:
    """Per message, its From addresses, without those of crmail's own people (a colleague's
    mail, or one's own, is not a customer's)."""
    froms: dict[int, set[str]] = defaultdict(set)
    for message_id, address in Participant.objects.filter(
        message_id__in=list(message_ids), role="from", valid=True
    ).values_list("message_id", "address"):
        froms[message_id].add(address.lower())
    everyone = set().union(*froms.values()) if froms else set()
    internal = {
        a.lower() for a in User.objects.filter(email__in=everyone).values_list("email", flat=True)
    }
    internal |= {
        a.lower()
        for a in Mailbox.objects.filter(email__in=everyone).values_list("email", flat=True)
    }
    return {m: found - internal for m, found in froms.items() if found - internal}


def _sent_by_record(
    candidates: list[Candidate], froms: dict[int, set[str]]
) -> dict[tuple[str, int, int], str]:
    """(module, record, message) -> the From address of the message that is the record's."""
    addresses = set().union(*froms.values()) if froms else set()
    if not addresses:
        return {}
    contacts = {c.record_id for c in candidates if c.module == Module.CONTACTS}
    leads = {c.record_id for c in candidates if c.module == Module.LEADS}
    owned: dict[tuple[str, int], set[str]] = defaultdict(set)
    for contact_id, lead_id, address in EmailAddress.objects.filter(
        Q(contact_id__in=list(contacts)) | Q(lead_id__in=list(leads)), address__in=addresses
    ).values_list("contact_id", "lead_id", "address"):
        if contact_id is not None:
            owned[(Module.CONTACTS.value, contact_id)].add(address)
        else:
            owned[(Module.LEADS.value, lead_id)].add(address)
    found: dict[tuple[str, int, int], str] = {}
    for c in candidates:
        match = sorted(froms.get(c.message_id, set()) & owned.get((c.module, c.record_id), set()))
        if match:
            found[(c.module, c.record_id, c.message_id)] = match[0]
    return found


def _write(told: dict[tuple[int, int], tuple[Candidate, str]]) -> int:
    owners = {u.pk: u for u in User.objects.filter(pk__in={o for o, _ in told})}
    messages = {
        m.pk: m
        for m in Message.objects.filter(pk__in={m for _, m in told}).only(
            "pk", "subject", "snippet"
        )
    }
    # Per owner and module, the records they may view, with their names.
    wanted: dict[tuple[int, str], set[int]] = defaultdict(set)
    for (owner_id, _), (c, _) in told.items():
        wanted[(owner_id, c.module)].add(c.record_id)
    names: dict[tuple[int, str, int], str] = {}
    for (owner_id, module), ids in wanted.items():
        owner = owners.get(owner_id)
        if owner is None:
            continue
        model = RECORD_MODELS[module]
        for record in access.visible(owner, model).filter(pk__in=list(ids)):
            names[(owner_id, module, record.pk)] = str(record) or "(no name)"
    rows = []
    for (owner_id, message_id), (c, address) in told.items():
        message = messages.get(message_id)
        if message is None or owner_id not in owners:
            continue
        name = names.get((owner_id, c.module, c.record_id))
        subject = " ".join(message.subject.split()) or NO_SUBJECT
        if name is not None:
            label = Module(c.module).label
            title = f"New mail from {name} ({label}): {subject}"
            module, record_id = c.module, c.record_id
        else:
            title = f"New mail from {address}: {subject}"
            module, record_id = "", None
        if len(title) > TITLE_LIMIT:
            title = title[: TITLE_LIMIT - 1] + "…"
        rows.append(
            Notification(
                user_id=owner_id,
                kind=Kind.CUSTOMER_MAIL,
                message_id=message_id,
                module=module,
                record_id=record_id,
                title=title,
                excerpt=message.snippet[:300],
            )
        )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


# --- mail crmail keeps no copy of (privacy mode) -------------------------------------------


def notify_live(received: dict[int, datetime]) -> int:
    """Notifications for mail that reached the Inbox of a mailbox keeping no copy
    (``LiveMail`` id -> when its event was recorded): the same rules as for stored mail,
    read from its Mail ID, From and received time only, so the title names the sender and
    no subject. The rows offered (those that existed already are skipped)."""
    rows = list(
        LiveMail.objects.filter(
            pk__in=list(received),
            mailbox__is_active=True,
            mailbox__customer_alerts=True,
            mailbox__owner__is_active=True,
        ).select_related("mailbox__owner")
    )
    fresh = [
        lm
        for lm in rows
        if lm.sender
        and is_fresh(lm.created_at, lm.mailbox.created_at, lm.received_at, received[lm.pk])
    ]
    senders = {lm.sender for lm in fresh}
    internal = {
        a.lower() for a in User.objects.filter(email__in=senders).values_list("email", flat=True)
    } | {
        a.lower() for a in Mailbox.objects.filter(email__in=senders).values_list("email", flat=True)
    }
    fresh = [lm for lm in fresh if lm.sender not in internal]
    if not fresh:
        return 0
    # Per address, its records: contacts first, then leads, the oldest first.
    records: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for contact_id, lead_id, address in EmailAddress.objects.filter(
        address__in={lm.sender for lm in fresh}
    ).values_list("contact_id", "lead_id", "address"):
        if contact_id is not None:
            records[address].append((Module.CONTACTS.value, contact_id))
        else:
            records[address].append((Module.LEADS.value, lead_id))
    notifications = []
    for lm in fresh:
        found = sorted(records.get(lm.sender, []), key=lambda r: (PERSON_MODULES.index(r[0]), r[1]))
        if not found:
            continue  # not a lead's or contact's mail
        owner = lm.mailbox.owner
        named = None
        for module, record_id in found:
            record = access.visible(owner, RECORD_MODELS[module]).filter(pk=record_id).first()
            if record is not None:
                named = (module, record_id, str(record) or "(no name)")
                break
        if named is not None:
            title = f"New mail from {named[2]} ({Module(named[0]).label})"
        else:
            title = f"New mail from {lm.sender}"
        notifications.append(
            Notification(
                user_id=owner.pk,
                kind=Kind.CUSTOMER_MAIL,
                live_mail_id=lm.pk,
                module=named[0] if named else "",
                record_id=named[1] if named else None,
                title=title[:TITLE_LIMIT],
            )
        )
    Notification.objects.bulk_create(notifications, ignore_conflicts=True)
    return len(notifications)
