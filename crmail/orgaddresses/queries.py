"""Read side of organisation addresses: which ones a user may send as, and who may.

A user may send as (or ask replies at) a *verified* address when it is open to everyone,
when their profile is among its profiles, or when they are an administrator. A user who
is deactivated may send as none.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from crmail.mail import verification
from crmail.mail.models import VerificationCode
from crmail.orgaddresses.models import OrganisationAddress
from crmail.people.models import User

PURPOSE = "org-address"  # the verification codes' purpose (crmail.mail.verification)


def usable_by(user: User) -> QuerySet[OrganisationAddress]:
    """The verified addresses ``user`` may send as, by address."""
    rows = OrganisationAddress.objects.filter(verified_at__isnull=False)
    if not user.is_active:
        return rows.none()
    if not user.is_admin:
        allowed = Q(everyone=True)
        if user.profile_id is not None:
            allowed |= Q(profiles=user.profile_id)
        rows = rows.filter(pk__in=OrganisationAddress.objects.filter(allowed).values("pk"))
    return rows.order_by("address")


def usable(user: User, address: str) -> OrganisationAddress | None:
    """The organisation address ``address`` when ``user`` may send as it, else None."""
    return usable_by(user).filter(address=address.strip().lower()).first()


def is_organisation_address(address: str) -> bool:
    return OrganisationAddress.objects.filter(address=address.strip().lower()).exists()


def all_addresses() -> QuerySet[OrganisationAddress]:
    """Every address, for administrators, with its profiles and who added it."""
    return OrganisationAddress.objects.select_related("added_by").prefetch_related("profiles")


def who_may(org: OrganisationAddress) -> str:
    """Who may send as ``org``, in words (its profiles prefetched or not)."""
    if org.everyone:
        return "Everyone"
    names = [p.name for p in org.profiles.all()]
    if not names:
        return "Administrators only"
    if len(names) == 1:
        return f"Administrators and the profile {names[0]}"
    return f"Administrators and the profiles {', '.join(names)}"


def waiting_code(org: OrganisationAddress) -> VerificationCode | None:
    """The code mailed to ``org`` and not yet entered, if any."""
    return verification.waiting(PURPOSE, org.address)


def refusal(user: User, address: str) -> str:
    """Why ``user`` may not send as the organisation address ``address``, in words; ""
    when they may, or when it is no organisation address at all."""
    org = OrganisationAddress.objects.filter(address=address.strip().lower()).first()
    if org is None or usable(user, org.address) is not None:
        return ""
    if not org.verified:
        return (
            f"{org.address} is an organisation address that is not verified yet: an "
            "administrator enters the code mailed to it before anyone sends as it."
        )
    profile = user.profile.name if user.profile is not None else "no profile"
    return (
        f"Your profile ({profile}) may not send as the organisation address {org.address}: "
        "an administrator can allow it under Organisation addresses."
    )
