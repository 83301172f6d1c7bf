"""``/domains``: email authentication (SPEC F10, decision 054), for administrators; others
get 403.

``POST /domains`` adds a domain and mails a code to an address at it; ``POST
/domains/{id}/confirm`` takes the code, and from then on the domain's ``records`` (the SPF
value and the DKIM key record, full names) are answered; ``POST /domains/{id}/validate``
looks them up in DNS and answers ``authenticated`` or ``pending`` with each problem in
words; ``DELETE`` removes the domain and its key.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from crmail.api import records
from crmail.api.auth import admin_user
from crmail.api.errors import Forbidden, Invalid
from crmail.api.schemas import Id, Input, ListParams, Page, errors_doc
from crmail.domains import actions, queries
from crmail.domains.models import Domain, State
from crmail.people.models import User

router = Router(tags=["Email authentication"])

READ = errors_doc(401, 403, 404, 422)
WRITE = errors_doc(400, 401, 403, 404, 422)


def _admin(request: HttpRequest) -> User:
    return admin_user(request, actions.ADMINS_ONLY)


@contextmanager
def _errors():  # type: ignore[no-untyped-def]
    try:
        yield
    except actions.Invalid as exc:
        raise Invalid.one(exc.field, str(exc)) from None
    except actions.NotAllowed as exc:
        raise Forbidden(str(exc)) from None


class RecordOut(Schema):
    purpose: str = Field(description="SPF or DKIM.")
    type: str = Field(description="The DNS record type: TXT.")
    name: str = Field(description="The record's full name.")
    value: str = Field(
        description="Its value; empty for SPF when crmail asks for no include "
        "(CRMAIL_SPF_INCLUDE unset): any one valid SPF record will do."
    )
    note: str


class FindingOut(Schema):
    record: str = Field(description="Domain, SPF, DKIM or DMARC.")
    ok: bool
    words: str = Field(description="What was found, or what is missing or wrong, in words.")
    blocking: bool = Field(description="false: reported only (DMARC).")
    inconclusive: bool = Field(description="DNS did not answer: nothing is known either way.")


class DomainOut(Schema):
    id: int
    name: str
    state: State = Field(
        description="unverified (waiting for the mailed code), pending or authenticated."
    )
    code_address: str = Field(description="Where the code was mailed; empty: added on the server.")
    records: list[RecordOut] = Field(
        description="The records to publish; empty until the code is entered."
    )
    problems: list[str] = Field(description="What the last check found missing or wrong.")
    findings: list[FindingOut] = Field(description="The last check, record by record.")
    added_at: datetime
    verified_at: datetime | None
    checked_at: datetime | None
    authenticated_at: datetime | None
    next_check_at: datetime | None = Field(
        description="When crmail checks a pending domain again by itself (for 48 hours)."
    )


class DomainIn(Input):
    domain: str = Field(max_length=253, description="Such as example.com.")
    address: str = Field(
        max_length=254, description="An address at that domain: the code is mailed there."
    )


class CodeIn(Input):
    code: str = Field(max_length=20, description="The six digits mailed to the address.")


class ResendIn(Input):
    address: str = Field(
        "", max_length=254, description="Another address at the domain; empty: the same one."
    )


def _out(domain: Domain) -> dict[str, Any]:
    shown = domain.state != State.UNVERIFIED
    return {
        "id": domain.pk,
        "name": domain.name,
        "state": domain.state,
        "code_address": domain.code_address,
        "records": [vars(r) for r in queries.records(domain)] if shown else [],
        "problems": domain.problems,
        "findings": domain.findings,
        "added_at": domain.added_at,
        "verified_at": domain.verified_at,
        "checked_at": domain.checked_at,
        "authenticated_at": domain.authenticated_at,
        "next_check_at": domain.next_check_at,
    }


def _domain(pk: int) -> Domain:
    return records.get_or_404(Domain.objects.all(), pk)


@router.get("", response={200: Page[DomainOut]}, openapi_extra=READ, summary="List domains")
def list_domains(request: HttpRequest, params: Query[ListParams]) -> dict[str, Any]:
    _admin(request)
    page = records.page(queries.domains(), params)
    page["items"] = [_out(d) for d in page["items"]]
    return page


@router.post(
    "",
    response={201: DomainOut},
    openapi_extra=WRITE,
    summary="Add a domain (a code is mailed to an address at it)",
)
def add_domain(request: HttpRequest, payload: DomainIn) -> dict[str, Any]:
    """A new 2048-bit DKIM key is made for the domain; its records are answered once the
    code is confirmed. An address not at the domain, or mail crmail cannot send
    (CRMAIL_SMTP_URL), answers 422 naming ``address``."""
    user = _admin(request)
    with _errors():
        domain = actions.add(payload.domain, by=user, code_to=payload.address)
    return _out(domain)


@router.get("/{id}", response={200: DomainOut}, openapi_extra=READ, summary="Read a domain")
def read_domain(request: HttpRequest, id: Id) -> dict[str, Any]:
    _admin(request)
    return _out(_domain(id))


@router.post(
    "/{id}/confirm",
    response={200: DomainOut},
    openapi_extra=WRITE,
    summary="Enter the mailed code",
)
def confirm_code(request: HttpRequest, id: Id, payload: CodeIn) -> dict[str, Any]:
    """A wrong or expired code answers 422 naming ``code``, in words (five tries)."""
    user = _admin(request)
    domain = _domain(id)
    with _errors():
        actions.confirm(domain, payload.code, by=user)
    return _out(domain)


@router.post(
    "/{id}/code", response={200: DomainOut}, openapi_extra=WRITE, summary="Mail a new code"
)
def resend_code(request: HttpRequest, id: Id, payload: ResendIn) -> dict[str, Any]:
    user = _admin(request)
    domain = _domain(id)
    with _errors():
        actions.resend_code(domain, by=user, code_to=payload.address)
    return _out(domain)


@router.post(
    "/{id}/validate",
    response={200: DomainOut},
    openapi_extra=WRITE,
    summary="Look the domain's records up in DNS now",
)
def validate_domain(request: HttpRequest, id: Id) -> dict[str, Any]:
    """``state`` answers authenticated, or pending with ``problems`` in words: no SPF record,
    SPF without the include, two SPF records, too many DNS lookups, DKIM key absent or
    not matching, DNS timeout, NXDOMAIN. A domain still waiting for its code: 422."""
    user = _admin(request)
    domain = _domain(id)
    with _errors():
        actions.validate(domain, by=user)
    return _out(domain)


@router.delete(
    "/{id}", response={204: None}, openapi_extra=WRITE, summary="Remove a domain and its key"
)
def delete_domain(request: HttpRequest, id: Id) -> None:
    user = _admin(request)
    domain = _domain(id)
    with _errors():
        actions.delete(domain, by=user)
