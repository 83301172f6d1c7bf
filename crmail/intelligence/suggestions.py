"""What email intelligence offers a user, and their answer (SPEC F15): signature details
offered as updates to the lead or contact who wrote the message, meeting times offered as
tasks on a record of the message. Nothing is applied without an Accept, and Accept applies
only the details the user ticked, through ``crm.actions`` and ``crm.task_actions`` (their
checks, their events). The user must be able to open the message (``sharing.visibility``)
and the record; either answer is kept (``Decision``), so an offer is made once.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction

from crmail.crm import actions as record_actions
from crmail.crm import task_actions
from crmail.crm.models import RECORD_MODELS, Contact, Lead, PersonRecord, Record, Task
from crmail.intelligence import switch
from crmail.intelligence.models import Decision, Kind, Result, State
from crmail.linking.models import Link
from crmail.mail.models import Message
from crmail.people import access
from crmail.people.models import User
from crmail.sharing.visibility import may_see_message

PERSON_MODULES = ("contacts", "leads")
LABELS = {
    "name": "Name",
    "title": "Title",
    "phone": "Phone",
    "mobile": "Mobile",
    "company": "Company",
}


class NoSuchSuggestion(LookupError):
    """No such suggestion on a message the user may open (answered as "not found")."""


class BadAnswer(ValueError):
    """The answer cannot be applied; ``field`` names what is at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AlreadyDecided(ValueError):
    """Someone answered this suggestion already."""


@dataclass(frozen=True)
class Detail:
    name: str  # "name", "title", "phone", "mobile", "company"
    current: str
    found: str

    @property
    def label(self) -> str:
        return LABELS[self.name]


@dataclass
class SignatureOffer:
    module: str
    record: PersonRecord
    details: list[Detail]
    extra: dict[str, str] = field(default_factory=dict)  # found, with no field to go to
    decision: Decision | None = None
    can_edit: bool = True  # the viewer may change the record (else it is only shown)

    @property
    def key(self) -> str:
        return f"{self.module}:{self.record.pk}"


@dataclass
class MeetingOffer:
    index: int
    start: datetime
    text: str
    approximate: bool
    decision: Decision | None = None


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _details(record: PersonRecord, signature: dict[str, object]) -> list[Detail]:
    found: list[Detail] = []

    def text(key: str) -> str:
        value = signature.get(key)
        return value.strip() if isinstance(value, str) else ""

    name = text("name")
    if name and name.casefold() != record.full_name.casefold():
        found.append(Detail("name", record.full_name, name))
    title = text("title")
    if title and title.casefold() != record.title.casefold():
        found.append(Detail("title", record.title, title))
    listed = signature.get("phones")
    phones = [p.strip() for p in listed if isinstance(p, str)] if isinstance(listed, list) else []
    phones = [p for p in phones if p]
    known = {_digits(record.phone), _digits(record.mobile)} - {""}
    new = [p for p in phones if _digits(p) not in known]
    for slot, number in zip(("phone", "mobile"), new, strict=False):
        found.append(Detail(slot, getattr(record, slot), number))
    company = text("company")
    if isinstance(record, Lead) and company and company.casefold() != record.company.casefold():
        found.append(Detail("company", record.company, company))
    return found


def _writers(viewer: User, message: Message) -> list[tuple[str, PersonRecord]]:
    """The leads and contacts the message is linked to whose address wrote it, that
    ``viewer`` may view."""
    sender = message.from_address.lower()
    if not sender:
        return []
    found: list[tuple[str, PersonRecord]] = []
    links = Link.objects.filter(message=message, module__in=PERSON_MODULES).order_by("module")
    for module, record_id in links.values_list("module", "record_id"):
        model: type[Contact] | type[Lead] = Contact if module == "contacts" else Lead
        record = (
            access.visible(viewer, model)
            .filter(pk=record_id, emails__address=sender)
            .prefetch_related("emails")
            .first()
        )
        if isinstance(record, PersonRecord):
            found.append((module, record))
    return found


def _result(viewer: User, message: Message) -> Result:
    if not switch.enabled() or not may_see_message(viewer, message):
        raise NoSuchSuggestion("There is no such message.")
    row = Result.objects.filter(message=message).first()
    if row is None:
        raise NoSuchSuggestion("crmail has not analysed this message (yet).")
    return row


def signature_offers(viewer: User, message: Message) -> list[SignatureOffer]:
    """The signature's details as updates to the records of its writer (those that
    differ from what the record holds); empty when there are none."""
    try:
        row = _result(viewer, message)
    except NoSuchSuggestion:
        return []
    if not row.signature:
        return []
    decisions = {d.key: d for d in Decision.objects.filter(message=message, kind=Kind.SIGNATURE)}
    offers = []
    for module, record in _writers(viewer, message):
        offer = SignatureOffer(module, record, _details(record, row.signature))
        offer.decision = decisions.get(offer.key)
        offer.can_edit = access.can(viewer, record, "edit")
        website = row.signature.get("website")
        if isinstance(website, str) and website:
            offer.extra["Website"] = website
        company = row.signature.get("company")
        if isinstance(company, str) and company and module == "contacts":
            offer.extra["Company"] = company
        if offer.details or offer.decision is not None:
            offers.append(offer)
    return offers


def meeting_offers(viewer: User, message: Message) -> list[MeetingOffer]:
    try:
        row = _result(viewer, message)
    except NoSuchSuggestion:
        return []
    decisions = {d.key: d for d in Decision.objects.filter(message=message, kind=Kind.MEETING)}
    offers = []
    for index, item in enumerate(row.meetings or []):
        try:
            start = datetime.fromisoformat(str(item.get("start")))
        except (TypeError, ValueError):
            continue
        offers.append(
            MeetingOffer(
                index,
                start,
                str(item.get("text", "")),
                bool(item.get("approximate")),
                decisions.get(str(index)),
            )
        )
    return offers


def meeting_targets(viewer: User, message: Message) -> list[tuple[str, Record]]:
    """The records of the message a meeting may go on as a task (``viewer`` may view
    them): deals first, then contacts, accounts, leads."""
    found: list[tuple[str, Record]] = []
    links = Link.objects.filter(message=message).values_list("module", "record_id")
    order = {"deals": 0, "contacts": 1, "accounts": 2, "leads": 3}
    for module, record_id in sorted(set(links), key=lambda x: (order.get(x[0], 9), x[1])):
        record = access.visible(viewer, RECORD_MODELS[module]).filter(pk=record_id).first()
        if record is not None:
            found.append((module, record))
    return found


def _decide(
    message: Message,
    kind: str,
    key: str,
    state: str,
    actor: User,
    fields: Sequence[str] = (),
    task: Task | None = None,
) -> Decision:
    try:
        with transaction.atomic():
            return Decision.objects.create(
                message=message,
                kind=kind,
                key=key,
                state=state,
                fields=list(fields),
                task=task,
                decided_by=actor,
            )
    except IntegrityError:
        raise AlreadyDecided("This suggestion was answered already.") from None


def _offer(actor: User, message: Message, module: str, record_id: int) -> SignatureOffer:
    for offer in signature_offers(actor, message):
        if offer.module == module and offer.record.pk == record_id:
            if offer.decision is not None:
                raise AlreadyDecided("This suggestion was answered already.")
            return offer
    raise NoSuchSuggestion("This message offers no signature details for that record.")


def accept_signature(
    actor: User, message: Message, module: str, record_id: int, fields: Sequence[str]
) -> Record:
    """Apply the ticked details (``fields``) of the signature to the record; the others
    stay as they are."""
    offer = _offer(actor, message, module, record_id)
    offered = {d.name: d for d in offer.details}
    chosen = list(dict.fromkeys(fields))
    unknown = [f for f in chosen if f not in offered]
    if unknown:
        raise BadAnswer(
            "fields",
            f"Tick among the details offered ({', '.join(offered) or 'none'}), "
            f"not {', '.join(repr(u[:30]) for u in unknown)}.",
        )
    if not chosen:
        raise BadAnswer("fields", "Tick the details to apply, or dismiss the suggestion.")
    data: dict[str, str] = {}
    for name in chosen:
        value = offered[name].found
        if name == "name":
            first, _, last = value.rpartition(" ")
            data["first_name"], data["last_name"] = first, last
        else:
            data[name] = value
    with transaction.atomic():
        record = record_actions.update_record(actor, offer.record, data)
        _decide(message, Kind.SIGNATURE, offer.key, State.ACCEPTED, actor, chosen)
    return record


def dismiss_signature(actor: User, message: Message, module: str, record_id: int) -> None:
    offer = _offer(actor, message, module, record_id)
    _decide(message, Kind.SIGNATURE, offer.key, State.DISMISSED, actor)


def _meeting(actor: User, message: Message, index: int) -> MeetingOffer:
    for offer in meeting_offers(actor, message):
        if offer.index == index:
            if offer.decision is not None:
                raise AlreadyDecided("This suggestion was answered already.")
            return offer
    raise NoSuchSuggestion("This message offers no such meeting.")


def accept_meeting(actor: User, message: Message, index: int, module: str, record_id: int) -> Task:
    """The meeting as a task for ``actor`` on the record (``module``, ``record_id``), due
    on its day (the organisation's time), noting its time and the words it was read from."""
    offer = _meeting(actor, message, index)
    if (module, record_id) not in {(m, r.pk) for m, r in meeting_targets(actor, message)}:
        raise BadAnswer("record", "Choose a record this message is on and that you may see.")
    local = offer.start.astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE))
    when = local.strftime("%A %d %B %Y") + ("" if offer.approximate else local.strftime(" %H:%M"))
    subject = message.subject or "(no subject)"
    title = f"Meeting ({offer.text})"[:200] if offer.text else "Meeting"
    notes = f"{when}, read from the email “{subject}”."
    with transaction.atomic():
        task = task_actions.create_task(
            actor=actor,
            module=module,
            record_id=record_id,
            title=title,
            due=local.date(),
            owner=actor,
            notes=notes,
            message_id=message.pk,
        )
        _decide(message, Kind.MEETING, str(index), State.ACCEPTED, actor, task=task)
    return task


def dismiss_meeting(actor: User, message: Message, index: int) -> None:
    offer = _meeting(actor, message, index)
    _decide(message, Kind.MEETING, str(offer.index), State.DISMISSED, actor)
