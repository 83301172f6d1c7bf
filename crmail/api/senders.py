"""``/messages/{id}/sender``: an unknown sender made a Lead or Contact (SPEC F14).

``GET …/sender?module=contacts|leads`` answers what the message says of the person at the
other end (its From; for mail you sent, its first To): the values a new record starts with
(``linking.senders.prefill``), and the Leads and Contacts you may see that have the
address already. ``POST …/sender`` makes the record from those values with the fields
given in the body over them, through ``crm.actions``, and links the past mail of its
address at once (a large amount in the background, ``LinkJob``). A message you may not
see answers 404; a module you may not create 403; a sender who is already a Lead or
Contact you may see 409, naming the record.
"""

# No ``from __future__ import annotations``: django-ninja reads the routes' annotations.

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from crmail.api.errors import Forbidden, Invalid
from crmail.api.messages import _visible_message
from crmail.api.records import form_data
from crmail.api.schemas import ContactOut, Id, Input, LeadOut, errors_doc
from crmail.crm.models import RECORD_MODELS, LeadStatus
from crmail.linking import senders
from crmail.linking.senders import Sender
from crmail.mail.parse import ParsedMessage
from crmail.mailboxes.replies import own_addresses
from crmail.people import access
from crmail.people.models import User

router = Router(tags=["Messages"])

SenderModule = Literal["contacts", "leads"]
LEAD_ONLY = ("company", "status", "source")
CONTACT_ONLY = ("account_id", "account_name")


class SenderQuery(Schema):
    module: SenderModule = Field(description="The kind of record to make: contacts or leads.")


class KnownOut(Schema):
    module: str
    id: int
    name: str


class SenderOut(Schema):
    """The values a new record starts with, taken from the message."""

    module: SenderModule
    received: bool = Field(
        description="True: the person is the message's sender (From); false: you sent it, "
        "and the person is its first recipient (To)."
    )
    known: list[KnownOut] = Field(
        description="Leads and Contacts you may see with this address already (then POST "
        "answers 409)."
    )
    first_name: str
    last_name: str
    email: str
    title: str = Field(description="From the signature, when it has one.")
    phone: str
    mobile: str
    company: str | None = Field(
        None, description="Leads: from the signature, else from the address's domain."
    )
    source: str | None = Field(None, description="Leads: 'Email'.")
    account_name: str | None = Field(
        None, description="Contacts: the company found, as the name of the account to use."
    )
    account_id: int | None = Field(
        None, description="Contacts: an account you may see with that name, if any."
    )


class SenderIn(Input):
    """The record to make, and the fields that replace the values taken from the message."""

    module: SenderModule
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = Field(None, description="Defaults to the sender's address.")
    secondary_emails: list[str] | None = Field(None, max_length=100)
    title: str | None = None
    phone: str | None = None
    mobile: str | None = None
    owner_id: Id | None = Field(None, description="An active user; defaults to you.")
    description: str | None = None
    company: str | None = Field(None, description="Leads only.")
    status: LeadStatus | None = Field(None, description="Leads only.")
    source: str | None = Field(None, description="Leads only.")
    account_id: Id | None = Field(
        None, description="Contacts only; defaults to the account whose name matches."
    )
    account_name: str | None = Field(
        None,
        max_length=200,
        description="Contacts only, without account_id: an account you may see with this "
        "name, else a new one made with it. Not given, no account is made.",
    )


def _sender(request: HttpRequest, id: int) -> tuple[User, ParsedMessage, Sender, set[str]]:
    user, message = _visible_message(request, id)
    parsed = senders.read(message)
    if parsed is None:
        raise HttpError(409, "crmail could not read this message, so it cannot name its sender.")
    own = own_addresses(user)
    sender = senders.correspondent(parsed, own)
    if sender is None:
        raise HttpError(409, "This message names nobody but you.")
    return user, parsed, sender, own


def _known(user: User, sender: Sender) -> list[dict[str, Any]]:
    return [
        {"module": r.MODULE, "id": r.pk, "name": str(r)}
        for r in senders.known_records(user, sender.address)
    ]


def _prefill(user: User, parsed: ParsedMessage, module: str, own: set[str]) -> dict[str, Any]:
    values: dict[str, Any] = senders.prefill(parsed, module, own)
    if module == "contacts":
        match = senders.matching_account(user, values["account_name"])
        values["account_id"] = match.pk if match else None
    return values


@router.get(
    "/{id}/sender",
    response={200: SenderOut},
    openapi_extra=errors_doc(401, 404, 409, 422),
    summary="Read a message's sender as a new record",
)
def read_sender(request: HttpRequest, id: Id, query: Query[SenderQuery]) -> dict[str, Any]:
    """The values a new contact or lead starts with, for the person at the other end of a
    message you may see: name and address from the message, title, phone and company from
    the sender's signature (the company from the address's domain when the signature has
    none, except for free mail services). 404 for a message you may not see, 409 for one
    that names nobody but you or that crmail could not read."""
    user, parsed, sender, own = _sender(request, id)
    values = _prefill(user, parsed, query.module, own)
    return values | {
        "module": query.module,
        "received": sender.received,
        "known": _known(user, sender),
    }


@router.post(
    "/{id}/sender",
    response={201: ContactOut | LeadOut},
    openapi_extra=errors_doc(400, 401, 403, 404, 409, 422),
    summary="Make a message's sender a contact or lead",
)
def create_sender(request: HttpRequest, id: Id, payload: SenderIn) -> Any:
    """Make the person at the other end of a message you may see a contact or lead: the
    values of `GET …/sender` with the fields given here over them. The past mail of the
    address is linked at once (a large amount in the background). 403 when you may not
    create that kind of record (or, with `account_name`, an account), 409 when a contact
    or lead you may see has the address already (the answer names it), 422 naming a field
    of the other kind of record or a value that is not valid."""
    module = payload.module
    given = payload.model_dump(exclude_unset=True, exclude={"module"})
    wrong = [name for name in given if name in (CONTACT_ONLY if module == "leads" else LEAD_ONLY)]
    if wrong:
        singular = "lead" if module == "leads" else "contact"
        raise Invalid([{"field": n, "message": f"A {singular} has no {n}."} for n in wrong])
    user, parsed, sender, own = _sender(request, id)
    if not access.can_create(user, RECORD_MODELS[module]):
        raise Forbidden(f"You may not create {module}.")
    values = _prefill(user, parsed, module, own)
    values.pop("account_name", None)  # a new account only when the caller names one
    account_name = given.pop("account_name", None) or ""
    data = form_data(values | given)
    if "account_id" not in given and account_name:
        data.pop("account", None)
    try:
        record = senders.create_from_sender(user, sender, module, data, account_name=account_name)
    except senders.AlreadyKnown as exc:
        known = exc.record
        raise HttpError(
            409,
            f"{sender.address} is already the {type(known)._meta.verbose_name} {known} "
            f"(/api/v1/{known.MODULE}/{known.pk}).",
        ) from None
    return type(record).objects.prefetch_related("emails").select_related("owner").get(pk=record.pk)
