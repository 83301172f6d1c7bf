"""The writers of organisation addresses (administrators only; SPEC F16, decision 055):
add one, change it, mail it a code, enter the code, delete it. The pages, the API and the
tests all write through these; every refusal says what to do, in words."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crmail.crm.addresses import normalize_address
from crmail.mail import verification
from crmail.mail.models import VerificationCode
from crmail.orgaddresses.models import OrganisationAddress
from crmail.orgaddresses.queries import PURPOSE
from crmail.people.models import Profile, User

ADMINS_ONLY = "Only administrators manage organisation addresses."
NAME_MAX = 200


class Invalid(Exception):
    """The input is refused; ``errors`` lists ``{"field", "message"}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors

    @classmethod
    def one(cls, field: str, message: str) -> Invalid:
        return cls([{"field": field, "message": message}])


class NotAllowed(Exception):
    """The acting user may not manage organisation addresses."""


class CodeNotSent(Exception):
    """The code could not be mailed (crmail's own mail, or asked again too soon)."""


def _check_admin(by: User) -> None:
    if not by.is_admin:
        raise NotAllowed(ADMINS_ONLY)


def _clean(
    org: OrganisationAddress | None,
    address: str | None,
    name: str | None,
    profile_ids: Iterable[int] | None,
) -> dict[str, Any]:
    """The fields given, checked (None: not given), or ``Invalid`` naming each problem."""
    errors: list[dict[str, str]] = []
    out: dict[str, Any] = {}
    if address is not None:
        try:
            out["address"] = normalize_address(address)
        except ValidationError as exc:
            errors.append({"field": "address", "message": exc.messages[0]})
        else:
            taken = OrganisationAddress.objects.filter(address=out["address"])
            if org is not None:
                taken = taken.exclude(pk=org.pk)
            if taken.exists():
                errors.append(
                    {
                        "field": "address",
                        "message": f"{out['address']} is an organisation address already.",
                    }
                )
    if name is not None:
        name = name.strip()
        if any(c in name for c in "\r\n\x00"):
            errors.append({"field": "name", "message": "The name may not contain line breaks."})
        elif len(name) > NAME_MAX:
            errors.append(
                {"field": "name", "message": f"The name is at most {NAME_MAX} characters."}
            )
        out["name"] = name
    if profile_ids is not None:
        wanted = set(profile_ids)
        found = list(Profile.objects.filter(pk__in=wanted))
        missing = wanted - {p.pk for p in found}
        if missing:
            errors.append(
                {
                    "field": "profile_ids",
                    "message": "There is no profile with the id "
                    + ", ".join(str(pk) for pk in sorted(missing))
                    + ".",
                }
            )
        out["profiles"] = found
    if errors:
        raise Invalid(errors)
    return out


@transaction.atomic
def add(
    by: User,
    address: str,
    *,
    name: str = "",
    everyone: bool = False,
    profile_ids: Iterable[int] = (),
) -> OrganisationAddress:
    """A new, not yet verified address (``send_code`` proves it)."""
    _check_admin(by)
    fields = _clean(None, address, name, profile_ids)
    org = OrganisationAddress.objects.create(
        address=fields["address"], name=fields["name"], everyone=everyone, added_by=by
    )
    org.profiles.set(fields["profiles"])
    return org


@transaction.atomic
def change(
    org: OrganisationAddress,
    by: User,
    *,
    address: str | None = None,
    name: str | None = None,
    everyone: bool | None = None,
    profile_ids: Iterable[int] | None = None,
) -> OrganisationAddress:
    """Change the fields given. A new address is not verified: it is proved again."""
    _check_admin(by)
    fields = _clean(org, address, name, profile_ids)
    updated = []
    if "address" in fields and fields["address"] != org.address:
        VerificationCode.objects.filter(purpose=PURPOSE, key=org.address).delete()
        org.address, org.verified_at = fields["address"], None
        updated += ["address", "verified_at"]
    if "name" in fields:
        org.name = fields["name"]
        updated.append("name")
    if everyone is not None:
        org.everyone = everyone
        updated.append("everyone")
    if updated:
        org.save(update_fields=updated)
    if "profiles" in fields:
        org.profiles.set(fields["profiles"])
    return org


def send_code(org: OrganisationAddress, by: User) -> VerificationCode:
    """Mail a code to the address; ``CodeNotSent`` says why not. A verified address needs
    none."""
    _check_admin(by)
    if org.verified:
        raise CodeNotSent(f"{org.address} is verified already.")
    try:
        return verification.send_code(
            PURPOSE, org.address, org.address, what=f"the organisation address {org.address}"
        )
    except verification.VerificationError as exc:
        raise CodeNotSent(str(exc)) from None


def verify(org: OrganisationAddress, by: User, typed: str) -> OrganisationAddress:
    """Accept the code mailed to the address: from now on it may be sent as."""
    _check_admin(by)
    if org.verified:
        return org
    if not (typed or "").strip():
        raise Invalid.one("code", f"Enter the code mailed to {org.address}.")
    try:
        verification.confirm(PURPOSE, org.address, typed)
    except verification.VerificationError as exc:
        raise Invalid.one("code", str(exc)) from None
    org.verified_at = timezone.now()
    org.save(update_fields=["verified_at"])
    return org


@transaction.atomic
def delete(org: OrganisationAddress, by: User) -> None:
    """Remove the address: no one sends as it any more. Mail sent as it stays."""
    _check_admin(by)
    VerificationCode.objects.filter(purpose=PURPOSE, key=org.address).delete()
    org.delete()
