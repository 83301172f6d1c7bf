"""Which label a sender's mail belongs under, from their contacts' deals (SPEC F8).

- closing this month: a contact of that address has an open deal whose closing date falls
  in the current calendar month, in the organisation's time zone (``TIME_ZONE``, set with
  ``CRMAIL_TIME_ZONE``);
- open deals: otherwise, an open deal (any other closing date, or none);
- customers: otherwise, a closed-won deal.

Only the contacts and deals the mailbox's owner may view count (``people.access``): where
their mail goes must not tell them of a deal they cannot see.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.utils import timezone

from crmail.crm.models import Contact, Deal, EmailAddress, StageKind
from crmail.mailboxes.models import LabelCategory
from crmail.people import access
from crmail.people.models import User

CHUNK = 900  # SQLite's limit on parameters, with room to spare
STRENGTH = {c: n for n, c in enumerate(LabelCategory)}  # lower is stronger


def this_month(now: datetime | None = None) -> tuple[date, date]:
    """The first and last day of the current month in the organisation's time zone."""
    today = timezone.localdate(now or timezone.now(), timezone.get_default_timezone())
    first = today.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def _strongest(a: LabelCategory | None, b: LabelCategory) -> LabelCategory:
    return b if a is None or STRENGTH[b] < STRENGTH[a] else a


def deal_category(
    kind: str, closing: date | None, month: tuple[date, date]
) -> LabelCategory | None:
    """The label one deal puts its contact's mail under (None: a lost deal)."""
    if kind == StageKind.OPEN:
        if closing is not None and month[0] <= closing <= month[1]:
            return LabelCategory.CLOSING
        return LabelCategory.OPEN
    if kind == StageKind.WON:
        return LabelCategory.CUSTOMERS
    return None


def categories(
    owner: User, addresses: Iterable[str], now: datetime | None = None
) -> dict[str, LabelCategory]:
    """{address (lower case): label} for the ``addresses`` whose mail goes under a label."""
    wanted = sorted({a.strip().lower() for a in addresses if a and a.strip()})
    month = this_month(now)
    contacts = access.visible(owner, Contact)
    deals = access.visible(owner, Deal)
    of_contact: dict[int, set[str]] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = EmailAddress.objects.filter(
            address__in=wanted[start : start + CHUNK], contact__in=contacts
        ).values_list("address", "contact_id")
        for address, contact_id in rows:
            of_contact.setdefault(contact_id, set()).add(address)
    found: dict[str, LabelCategory] = {}
    ids = sorted(of_contact)
    for start in range(0, len(ids), CHUNK):
        found_deals = deals.filter(contact_id__in=ids[start : start + CHUNK]).values_list(
            "contact_id", "stage__kind", "closing_date"
        )
        for contact_id, kind, closing in found_deals:
            category = deal_category(kind, closing, month)
            if category is None:
                continue
            for address in of_contact[contact_id]:
                found[address] = _strongest(found.get(address), category)
    return found
