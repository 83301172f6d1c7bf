"""``/organisation-addresses`` (SPEC F16, decision 055): shared addresses such as sales@
that users may send as (``from`` of ``/messages/send``) or ask replies at (``reply_to``).

Administrators list every address and add, change and delete them; an address is usable
only once the code mailed to it (``POST /{id}/send-code``) is entered (``POST
/{id}/verify``), and changing it means verifying again. Everyone else lists the verified
addresses they may send as (their profile is allowed, or the address is open to
everyone); any other answers 404 to them, and the writes 403. Each item says whether
replies to it are tracked: only when a mailbox of that address is connected over IMAP or
POP.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from crmail.api import records
from crmail.api.auth import admin_user, current_user
from crmail.api.errors import Forbidden, Invalid
from crmail.api.schemas import Address, Id, Input, ListParams, Page, errors_doc
from crmail.mailboxes.org_addresses import tracking
from crmail.orgaddresses import actions, queries
from crmail.orgaddresses.models import OrganisationAddress
from crmail.people.models import User

router = Router(tags=["Organisation addresses"])

READ = errors_doc(401, 404, 422)
WRITE = errors_doc(400, 401, 403, 404, 422)
Name = Annotated[str, Field(max_length=actions.NAME_MAX)]


def _admin(request: HttpRequest) -> User:
    return admin_user(request, actions.ADMINS_ONLY)


@contextmanager
def _errors():  # type: ignore[no-untyped-def]
    try:
        yield
    except actions.Invalid as exc:
        raise Invalid(exc.errors) from None
    except actions.NotAllowed as exc:
        raise Forbidden(str(exc)) from None


class OrgAddressOut(Schema):
    id: int
    address: str
    name: str = Field(description="The name mail sent as it carries; empty: the sender's.")
    verified: bool = Field(description="Its code was entered: it may be sent as.")
    verified_at: datetime | None
    code_sent_at: datetime | None = Field(
        description="When a code still waiting to be entered was mailed to it; null: none."
    )
    everyone: bool = Field(description="Every user may send as it.")
    profile_ids: list[int] = Field(
        description="The profiles whose users may send as it (administrators always may)."
    )
    may_send_as: bool = Field(description="You may send as it now.")
    replies_tracked: bool = Field(
        description="Replies to it reach crmail: a mailbox of this address is connected "
        "over IMAP or POP."
    )
    replies: str = Field(description="Whether replies are tracked, and why, in words.")


class OrgAddressIn(Input):
    address: Address
    name: Name = ""
    everyone: bool = False
    profile_ids: list[Id] = Field(default_factory=list, max_length=500)


class OrgAddressPatch(Input):
    address: Address | None = Field(None, description="A new address is verified again.")
    name: Name | None = None
    everyone: bool | None = None
    profile_ids: list[Id] | None = Field(None, max_length=500)


class CodeIn(Input):
    code: str = Field(max_length=20, description="The six digits mailed to the address.")


class CodeSentOut(Schema):
    sent_to: str
    expires_at: datetime


def _outs(user: User, orgs: list[OrganisationAddress]) -> list[dict[str, Any]]:
    tracked = tracking(o.address for o in orgs)
    usable = set(queries.usable_by(user).values_list("pk", flat=True))
    out = []
    for o in orgs:
        waiting = None if o.verified else queries.waiting_code(o)
        out.append(
            {
                "id": o.pk,
                "address": o.address,
                "name": o.name,
                "verified": o.verified,
                "verified_at": o.verified_at,
                "code_sent_at": waiting.created_at if waiting else None,
                "everyone": o.everyone,
                "profile_ids": sorted(p.pk for p in o.profiles.all()),
                "may_send_as": o.pk in usable,
                "replies_tracked": tracked[o.address].tracked,
                "replies": tracked[o.address].words,
            }
        )
    return out


def _visible(user: User) -> Any:
    rows = queries.all_addresses()
    return rows if user.is_admin else rows.filter(pk__in=queries.usable_by(user).values("pk"))


@router.get(
    "",
    response={200: Page[OrgAddressOut]},
    openapi_extra=READ,
    summary="List organisation addresses",
)
def list_addresses(request: HttpRequest, params: Query[ListParams]) -> dict[str, Any]:
    """Administrators: every address. Others: those they may send as."""
    user = current_user(request)
    page = records.page(_visible(user).order_by("address"), params)
    page["items"] = _outs(user, page["items"])
    return page


@router.post(
    "",
    response={201: OrgAddressOut},
    openapi_extra=WRITE,
    summary="Add an organisation address (then send its code)",
)
def add_address(request: HttpRequest, payload: OrgAddressIn) -> dict[str, Any]:
    user = _admin(request)
    with _errors():
        org = actions.add(
            user,
            payload.address,
            name=payload.name,
            everyone=payload.everyone,
            profile_ids=payload.profile_ids,
        )
    return _outs(user, [org])[0]


def _address(user: User, pk: int) -> OrganisationAddress:
    return records.get_or_404(_visible(user), pk)


@router.get("/{id}", response={200: OrgAddressOut}, openapi_extra=READ, summary="Read an address")
def read_address(request: HttpRequest, id: Id) -> dict[str, Any]:
    user = current_user(request)
    return _outs(user, [_address(user, id)])[0]


@router.patch(
    "/{id}", response={200: OrgAddressOut}, openapi_extra=WRITE, summary="Change an address"
)
def change_address(request: HttpRequest, id: Id, payload: OrgAddressPatch) -> dict[str, Any]:
    """Fields given change; null or absent leave them. A new address is verified again."""
    user = _admin(request)
    org = _address(user, id)
    with _errors():
        actions.change(
            org,
            user,
            address=payload.address,
            name=payload.name,
            everyone=payload.everyone,
            profile_ids=payload.profile_ids,
        )
    return _outs(user, [org])[0]


@router.delete("/{id}", response={204: None}, openapi_extra=WRITE, summary="Delete an address")
def delete_address(request: HttpRequest, id: Id) -> None:
    """No one sends as it from crmail any more; mail sent as it stays."""
    user = _admin(request)
    org = _address(user, id)
    with _errors():
        actions.delete(org, user)


@router.post(
    "/{id}/send-code",
    response={202: CodeSentOut},
    openapi_extra=errors_doc(401, 403, 404, 409, 422),
    summary="Mail a verification code to the address",
)
def send_code(request: HttpRequest, id: Id) -> dict[str, Any]:
    """Through crmail's own mail (CRMAIL_SMTP_URL). 409 says why none was sent: the
    address is verified already, a code went out less than a minute ago, or the mail
    server refused."""
    user = _admin(request)
    org = _address(user, id)
    with _errors():
        try:
            sent = actions.send_code(org, user)
        except actions.CodeNotSent as exc:
            raise HttpError(409, f"No code was sent: {exc}") from None
    return {"sent_to": sent.address, "expires_at": sent.expires_at}


@router.post(
    "/{id}/verify",
    response={200: OrgAddressOut},
    openapi_extra=WRITE,
    summary="Enter the code mailed to the address",
)
def verify(request: HttpRequest, id: Id, payload: CodeIn) -> dict[str, Any]:
    """A wrong, expired or used-up code answers 422 naming ``code``, with what to do."""
    user = _admin(request)
    org = _address(user, id)
    with _errors():
        actions.verify(org, user, payload.code)
    return _outs(user, [org])[0]
