"""The writers of email authentication (administrators only): add a domain and mail the
code that proves it, confirm the code, validate its records in DNS, delete it; and the
re-check of pending domains that the job queue runs (``tasks``). The pages, the API and
the ``crmail domain`` command all write through these.

States: *waiting for the code* → (code entered) → *Pending* ⇄ *Authenticated*. A domain
added with the command (run by the server's administrator) needs no code. Validation
answers what DNS shows now; a validation that DNS could not answer (a timeout) leaves an
authenticated domain authenticated.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from crmail.domains import keys
from crmail.domains.models import Domain, State
from crmail.domains.names import BadName, domain_name, domain_of
from crmail.mail import system, verification
from crmail.mail.models import VerificationCode
from crmail.people.models import User

if TYPE_CHECKING:
    from types import ModuleType

    from crmail.domains.checks import Report


def _checks() -> ModuleType:
    """The DNS checks, loaded when a domain is checked (checkdmarc and what it brings,
    about 45 MB, stay out of every process that only imports the jobs)."""
    from crmail.domains import checks

    return checks


log = logging.getLogger(__name__)

PURPOSE = "domain"  # of the verification codes
ADMINS_ONLY = "Only administrators manage email authentication."
RECHECK_EVERY = timedelta(minutes=15)
RECHECK_FOR = timedelta(hours=48)  # DNS changes can take this long to be seen everywhere


class Invalid(Exception):
    """Input refused; ``field`` names it ("domain", "address", "code" or None)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotAllowed(Exception):
    """The acting user may not do this (not an administrator)."""


def _check_admin(by: User | None) -> None:
    if by is not None and not by.is_admin:
        raise NotAllowed(ADMINS_ONLY)


def _what(name: str) -> str:
    return f"the domain {name}"


def add(name: str, *, by: User | None, code_to: str = "") -> Domain:
    """Add domain ``name`` with a new DKIM key. From a page or the API (``by`` an
    administrator) a code is mailed to ``code_to``, an address at that domain, and the
    domain waits for it; from the command (``by`` None, run on the server) it is pending
    at once. Raises ``Invalid`` naming the field, ``NotAllowed``."""
    _check_admin(by)
    try:
        name = domain_name(name)
    except BadName as exc:
        raise Invalid("domain", str(exc)) from None
    code_to = code_to.strip()
    if by is not None:
        _check_address(name, code_to)
    if Domain.objects.filter(name=name).exists():
        raise Invalid("domain", f"{name} is already added.")
    pair = keys.new_key()
    try:
        with transaction.atomic():
            domain = Domain.objects.create(
                name=name,
                selector=keys.new_selector(),
                public_key=pair.public_b64,
                private_key=pair.private_pem,
                added_by=by,
                code_address=code_to if by is not None else "",
            )
    except IntegrityError:  # another administrator added it a moment ago
        raise Invalid("domain", f"{name} is already added.") from None
    if by is None:
        _proven(domain)
        return domain
    try:
        verification.send_code(PURPOSE, name, code_to, what=_what(name))
    except verification.VerificationError as exc:
        domain.delete()
        raise Invalid("address", str(exc)) from None
    return domain


def _check_address(name: str, address: str) -> None:
    if not address:
        raise Invalid("address", f"Enter an address at {name} to mail the code to.")
    try:
        validate_email(address)
    except ValidationError:
        raise Invalid("address", f"{address!r} is not an email address.") from None
    if domain_of(address) != name:
        raise Invalid(
            "address",
            f"The code must go to an address at {name} (not {address}), so that only someone "
            "who receives mail there can enter it.",
        )


def resend_code(domain: Domain, *, by: User, code_to: str = "") -> None:
    """Mail a new code for a domain still waiting for one (to ``code_to``, else to the
    address the last code went to)."""
    _check_admin(by)
    if domain.state != State.UNVERIFIED:
        raise Invalid(None, f"{domain.name} is proven already: no code is needed.")
    code_to = code_to.strip() or domain.code_address
    _check_address(domain.name, code_to)
    try:
        verification.send_code(PURPOSE, domain.name, code_to, what=_what(domain.name))
    except verification.VerificationError as exc:
        raise Invalid("address", str(exc)) from None
    Domain.objects.filter(pk=domain.pk).update(code_address=code_to)
    domain.code_address = code_to


def confirm(domain: Domain, code: str, *, by: User) -> Domain:
    """Accept the code mailed for ``domain``: it is pending from now on, its records shown
    and re-checked for ``RECHECK_FOR``. Raises ``Invalid`` ("code") in words."""
    _check_admin(by)
    if domain.state != State.UNVERIFIED:
        return domain
    try:
        verification.confirm(PURPOSE, domain.name, code)
    except verification.VerificationError as exc:
        raise Invalid("code", str(exc)) from None
    _proven(domain)
    return domain


def _proven(domain: Domain) -> None:
    now = timezone.now()
    domain.state = State.PENDING
    domain.verified_at = now
    domain.next_check_at = now + RECHECK_EVERY
    domain.recheck_until = now + RECHECK_FOR
    domain.save(update_fields=["state", "verified_at", "next_check_at", "recheck_until"])


def validate(domain: Domain, *, by: User | None) -> Report:
    """Look the records up now and record the outcome: Authenticated, or Pending with each
    problem in words. Validating by hand keeps a pending domain re-checked for another
    ``RECHECK_FOR``. ``by`` None is the command, run on the server: a domain still waiting
    for its code is taken as proven."""
    _check_admin(by)
    if domain.state == State.UNVERIFIED and by is None:
        _proven(domain)  # the server's administrator, at the command: no code needed
    if domain.state == State.UNVERIFIED:
        raise Invalid(
            "code",
            f"Prove that {domain.name} is yours first: enter the code mailed to "
            f"{domain.code_address or 'an address there'}.",
        )
    report = _checks().check(domain.name, domain.selector, domain.public_key)
    _record(domain, report, by_hand=True)
    return report


def _record(domain: Domain, report: Report, *, by_hand: bool) -> None:
    """Write a check's outcome (nothing when the domain was deleted meanwhile)."""
    now = timezone.now()
    if report.authenticated:
        state = State.AUTHENTICATED
    elif report.inconclusive and domain.state == State.AUTHENTICATED:
        state = State.AUTHENTICATED  # DNS did not say; nothing shows the records are gone
    else:
        state = State.PENDING
    changes = {
        "state": state,
        "findings": [f.as_dict() for f in report.findings],
        "checked_at": now,
    }
    if state == State.AUTHENTICATED:
        if domain.state != State.AUTHENTICATED:
            changes["authenticated_at"] = now
        changes["next_check_at"] = None
        changes["recheck_until"] = None
    elif by_hand:
        changes["recheck_until"] = now + RECHECK_FOR
        changes["next_check_at"] = now + RECHECK_EVERY
    elif domain.recheck_until is not None and now + RECHECK_EVERY < domain.recheck_until:
        changes["next_check_at"] = now + RECHECK_EVERY
    else:
        changes["next_check_at"] = None
    Domain.objects.filter(pk=domain.pk).update(**changes)
    for key, value in changes.items():
        setattr(domain, key, value)


def delete(domain: Domain, *, by: User | None) -> None:
    """Remove the domain and its key: mail from it is no longer signed. Its DNS records
    are the administrator's to remove."""
    _check_admin(by)
    with transaction.atomic():
        VerificationCode.objects.filter(purpose=PURPOSE, key=domain.name).delete()
        domain.delete()


def recheck(domain_id: int) -> None:
    """The job's re-check of a pending domain whose time has come; when it is
    authenticated, or when ``RECHECK_FOR`` has passed without that, its administrator is
    told by mail. Safe to run twice: a domain not due is left alone."""
    domain = Domain.objects.filter(
        pk=domain_id, state=State.PENDING, next_check_at__lte=timezone.now()
    ).first()
    if domain is None:
        return
    report = _checks().check(domain.name, domain.selector, domain.public_key)
    _record(domain, report, by_hand=False)
    if domain.state == State.AUTHENTICATED:
        _tell(
            domain,
            f"{domain.name} is authenticated",
            f"crmail found the SPF and DKIM records of {domain.name} in DNS: the domain is "
            f"authenticated, and mail crmail sends from addresses at {domain.name} is "
            "signed with its DKIM key from now on.\n",
        )
    elif domain.next_check_at is None:
        problems = "".join(f"- {p}\n" for p in report.problems)
        _tell(
            domain,
            f"{domain.name} is still pending",
            f"crmail checked the DNS records of {domain.name} for "
            f"{int(RECHECK_FOR.total_seconds() // 3600)} hours and they are still not as "
            f"they should be:\n\n{problems}\nFix them, then press Validate on the domain's "
            "page in crmail (Administration, Email authentication).\n",
        )


def _tell(domain: Domain, subject: str, text: str) -> None:
    """Mail the outcome to the administrator who added the domain (every active
    administrator when that one is gone or it was added on the server)."""
    adder = domain.added_by
    if adder is not None and adder.is_active and adder.is_admin:
        recipients = [adder.email]
    else:
        admins = User.objects.filter(Q(is_superuser=True) | Q(profile__is_admin=True))
        recipients = list(admins.filter(is_active=True).values_list("email", flat=True))
    for address in recipients:
        try:
            system.send(address, f"crmail: {subject}", text)
        except system.SystemMailError as exc:
            log.warning("could not tell an administrator about %s: %s", domain.name, exc)
