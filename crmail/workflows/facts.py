"""Reading messages and their records into ``conditions.MessageFacts``, many at once.

A handful of queries per batch, whatever its size: the messages, their recipients, their
links, the linked leads, contacts, accounts and deals with what rules compare (a stage by
its name, an amount as a number), and the open deals of their contacts. Header values are
read from the raw message only when a rule asks for one.

A message's records, as rules see them:
- the leads, contacts, accounts and deals it is linked to;
- the accounts of the contacts it is linked to (an account's mail is its contacts');
- the newest open deal of the contact at the other end: the sender's contact, or for mail
  from crmail's people the first recipient that is a contact with one ("via"
  ``open_deal``: not linked yet; "Link to the contact's open deal" links this one).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from django.db.models import Q

from crmail.crm.models import Account, Contact, Deal, Lead, StageKind
from crmail.intelligence import pipeline, switch
from crmail.intelligence.models import Result
from crmail.linking.models import Link, Module
from crmail.mail.models import Message, Participant
from crmail.mail.parse import decode_words
from crmail.mail.store import raw_bytes
from crmail.people import access
from crmail.people.models import User
from crmail.workflows.conditions import MessageFacts, RecordFacts
from crmail.workflows.fields import PLURAL, SINGULAR

RECIPIENT_ROLES = ("to", "cc", "bcc")
FIELDS = (
    "pk",
    "subject",
    "from_address",
    "from_name",
    "body_text",
    "has_attachments",
    "size",
    "snippet",
    "date",
)


def load(message_ids: Iterable[int], *, intelligence: bool = False) -> dict[int, MessageFacts]:
    """The facts of each message that exists, by id. With ``intelligence`` (a rule looks
    at sentiment or intent), a message that has no result yet is analysed first: rules
    run after linking, maybe before the analysis's own job."""
    ids = list(dict.fromkeys(message_ids))
    if not ids:
        return {}
    found: dict[int, MessageFacts] = {}
    for m in Message.objects.filter(pk__in=ids).only(*FIELDS):
        found[m.pk] = MessageFacts(
            id=m.pk,
            subject=m.subject,
            from_address=m.from_address.lower(),
            from_name=m.from_name,
            body=m.body_text,
            has_attachment=m.has_attachments,
            size=m.size,
            snippet=m.snippet,
            date=m.date,
            header_reader=_header_reader(m.pk),
        )
    recipients: dict[int, list[str]] = defaultdict(list)
    for message_id, address in (
        Participant.objects.filter(message_id__in=list(found), role__in=RECIPIENT_ROLES)
        .order_by("message_id", "position")
        .values_list("message_id", "address")
    ):
        if address.lower() not in recipients[message_id]:
            recipients[message_id].append(address.lower())
    for message_id, facts in found.items():
        facts.recipients = tuple(recipients.get(message_id, ()))
    _records(found)
    _intelligence(found, compute=intelligence)
    return found


def _intelligence(found: dict[int, MessageFacts], *, compute: bool) -> None:
    if not found or not switch.enabled():
        return
    if compute:
        missing = set(found) - set(
            Result.objects.filter(message_id__in=list(found)).values_list("message_id", flat=True)
        )
        if missing:
            pipeline.analyse_messages(sorted(missing))
    rows = Result.objects.filter(message_id__in=list(found)).values_list(
        "message_id", "sentiment", "intent"
    )
    for message_id, sentiment, intent in rows:
        found[message_id].sentiment = sentiment
        found[message_id].intent = intent


def _header_reader(message_id: int) -> Any:
    def read() -> dict[str, list[str]]:
        message = Message.objects.filter(pk=message_id).first()
        if message is None:
            return {}
        raw = raw_bytes(message)
        head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
        parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(head)
        values: dict[str, list[str]] = defaultdict(list)
        for name, value in parsed.items():
            text = value if isinstance(value, str) else str(value)
            values[name.lower()].append(" ".join(decode_words(text).split()))
        return dict(values)

    return read


# --- records ----------------------------------------------------------------------------


def _records(found: dict[int, MessageFacts]) -> None:
    links = list(
        Link.objects.filter(message_id__in=list(found))
        .order_by("message_id", "pk")
        .values_list("message_id", "module", "record_id")
    )
    wanted: dict[str, set[int]] = defaultdict(set)
    per_message: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for message_id, module, record_id in links:
        if (module, record_id) not in per_message[message_id]:
            per_message[message_id].append((module, record_id))
            wanted[module].add(record_id)
    contacts = _contacts(wanted[Module.CONTACTS])
    leads = _leads(wanted[Module.LEADS])
    account_ids = wanted[Module.ACCOUNTS] | {
        c.account_id for c in contacts.values() if c.account_id
    }
    accounts = _accounts(account_ids)
    deals = _deals(Deal.objects.filter(pk__in=wanted[Module.DEALS]))
    built: dict[str, dict[int, RecordFacts]] = {
        Module.CONTACTS: {pk: _person("contact", c) for pk, c in contacts.items()},
        Module.LEADS: {pk: _person("lead", x) for pk, x in leads.items()},
        Module.ACCOUNTS: {pk: _account(a) for pk, a in accounts.items()},
        Module.DEALS: deals,
    }
    open_deals = _open_deals(contacts.values())
    for message_id, facts in found.items():
        out: dict[tuple[str, int], RecordFacts] = {}
        pairs = per_message.get(message_id, [])
        for module, pk in pairs:
            _add(out, facts, built[module].get(pk), "link")
        for module, pk in pairs:
            contact = contacts.get(pk) if module == Module.CONTACTS else None
            if contact is not None and contact.account_id:
                _add(out, facts, built[Module.ACCOUNTS].get(contact.account_id), "account")
        for deal_pk in _other_end_deals(facts, pairs, contacts, open_deals):
            _add(out, facts, open_deals["rows"][deal_pk], "open_deal")
        # The sender's records first: actions that take one record take theirs.
        facts.records = sorted(out.values(), key=lambda r: not r.sender)


def _add(
    out: dict[tuple[str, int], RecordFacts],
    facts: MessageFacts,
    record: RecordFacts | None,
    via: str,
) -> None:
    """``record`` as the message reaches it (``via``), unless it is there already."""
    if record is None or (record.module, record.id) in out:
        return
    copy = RecordFacts(**{**record.__dict__, "via": via})
    copy.sender = bool(facts.from_address and facts.from_address in record.values.get("email", []))
    out[(record.module, record.id)] = copy


def _contacts(ids: set[int]) -> dict[int, Contact]:
    rows = Contact.objects.filter(pk__in=ids).select_related("owner", "account")
    return {c.pk: c for c in rows.prefetch_related("emails")}


def _leads(ids: set[int]) -> dict[int, Lead]:
    rows = Lead.objects.filter(pk__in=ids).select_related("owner")
    return {x.pk: x for x in rows.prefetch_related("emails")}


def _accounts(ids: set[int]) -> dict[int, Account]:
    return {a.pk: a for a in Account.objects.filter(pk__in=ids).select_related("owner")}


def _deals(rows: Any) -> dict[int, RecordFacts]:
    return {
        d.pk: _deal(d) for d in rows.select_related("owner", "stage", "pipeline").order_by("pk")
    }


def _owner(record: Any) -> list[Any]:
    return [record.owner.email.lower()] if record.owner_id else []


def _person(module: str, record: Contact | Lead) -> RecordFacts:
    emails = [e.address.lower() for e in record.emails.all()]
    values: dict[str, list[Any]] = {
        "name": [record.full_name],
        "first_name": [record.first_name],
        "last_name": [record.last_name],
        "email": emails,
        "title": [record.title],
        "phone": [record.phone],
        "mobile": [record.mobile],
        "owner": _owner(record),
    }
    if isinstance(record, Contact):
        values["account"] = [record.account.name] if record.account_id else []
    else:
        values |= {
            "company": [record.company],
            "status": [record.status],
            "source": [record.source],
        }
    return RecordFacts(module, record.pk, record.full_name, record.owner_id, values)


def _account(record: Account) -> RecordFacts:
    values: dict[str, list[Any]] = {
        "name": [record.name],
        "domain": [record.domain],
        "website": [record.website],
        "industry": [record.industry],
        "phone": [record.phone],
        "owner": _owner(record),
    }
    return RecordFacts("account", record.pk, record.name, record.owner_id, values)


def _deal(record: Deal) -> RecordFacts:
    values: dict[str, list[Any]] = {
        "name": [record.name],
        "stage": [record.stage.name],
        "status": [record.stage.kind],
        "amount": [record.amount] if record.amount is not None else [],
        "probability": [record.stage.probability],
        "pipeline": [record.pipeline.name],
        "owner": _owner(record),
    }
    return RecordFacts("deal", record.pk, record.name, record.owner_id, values)


def _open_deals(contacts: Iterable[Contact]) -> dict[str, Any]:
    """The open deals of ``contacts`` and of their accounts, newest first: per contact
    the ids in order ("by_contact"), and each deal's facts ("rows")."""
    contacts = list(contacts)
    if not contacts:
        return {"by_contact": {}, "rows": {}}
    accounts = {c.account_id for c in contacts if c.account_id}
    rows = list(
        Deal.objects.filter(stage__kind=StageKind.OPEN)
        .filter(Q(contact__in=[c.pk for c in contacts]) | Q(account__in=accounts))
        .select_related("owner", "stage", "pipeline")
        .order_by("-modified_at", "-pk")
    )
    by_contact: dict[int, list[int]] = defaultdict(list)
    for contact in contacts:
        for deal in rows:
            if deal.contact_id == contact.pk or (
                contact.account_id and deal.account_id == contact.account_id
            ):
                by_contact[contact.pk].append(deal.pk)
    return {"by_contact": by_contact, "rows": {d.pk: _deal(d) for d in rows}}


def _other_end_deals(
    facts: MessageFacts,
    pairs: Sequence[tuple[str, int]],
    contacts: dict[int, Contact],
    open_deals: dict[str, Any],
) -> list[int]:
    """The open deals of the contact at the other end, newest first (all of them: a
    personal rule takes the first its owner may see). The sender's contact if the sender
    is a contact; else the first recipient that is a contact with an open deal."""
    linked = [contacts[pk] for module, pk in pairs if module == Module.CONTACTS and pk in contacts]
    if not linked:
        return []
    sender = [c for c in linked if facts.from_address in _addresses(c)]
    ordered = sender or sorted(linked, key=lambda c: _first_position(facts, c))
    for contact in ordered:
        found = open_deals["by_contact"].get(contact.pk)
        if found:
            return list(found)
    return []


def _addresses(contact: Contact) -> set[str]:
    return {e.address.lower() for e in contact.emails.all()}


def _first_position(facts: MessageFacts, contact: Contact) -> int:
    mine = _addresses(contact)
    for n, address in enumerate(facts.recipients):
        if address in mine:
            return n
    return len(facts.recipients)


# --- what one user may see of them ------------------------------------------------------


def visible_to(user: User | None, records: Sequence[RecordFacts]) -> list[RecordFacts]:
    """The records a rule of ``user`` sees (None: an organisation's rule sees all), with
    at most one deal reached as "the contact's open deal": the newest ``user`` may view,
    and none when the message is linked to a deal ``user`` may view."""
    if user is None:
        allowed = list(records)
    else:
        allowed = []
        ids: dict[str, set[int]] = defaultdict(set)
        for r in records:
            ids[r.module].add(r.id)
        may: set[tuple[str, int]] = set()
        for module, pks in ids.items():
            model = access_model(module)
            may |= {
                (module, pk)
                for pk in access.visible(user, model)
                .filter(pk__in=pks)
                .values_list("pk", flat=True)
            }
        allowed = [r for r in records if (r.module, r.id) in may]
    linked_deal = any(r.module == "deal" and r.via == "link" for r in allowed)
    out: list[RecordFacts] = []
    open_taken = linked_deal
    for r in allowed:
        if r.via == "open_deal":
            if open_taken:
                continue
            open_taken = True
        out.append(r)
    return out


def access_model(module: str) -> Any:
    """The record class of a spec module ("deal") or a link's ("deals")."""
    from crmail.crm.models import RECORD_MODELS

    return RECORD_MODELS[PLURAL.get(module, module)]


def spec_module(module: str) -> str:
    """A link's module ("deals") as rules name it ("deal")."""
    return SINGULAR.get(module, module)
