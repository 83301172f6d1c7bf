"""Saved reports (SPEC F17): who sees them, and their one writer of each kind.

A saved report is seen by its owner, by the users it is shared with, and by the users
whose role it is shared with (that role itself, not those below it). Only its owner
changes or deletes it. Its figures are always counted for whoever opens it.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse

from crmail.people.models import Role, User
from crmail.reports import queries
from crmail.reports.models import NAME_MAX, SavedReport, Schedule


class NotAllowed(Exception):
    """Only a saved report's owner changes it; the message says so."""


def visible_to(viewer: User) -> QuerySet[SavedReport]:
    """The saved reports ``viewer`` may open: their own, and those shared with them."""
    if not (viewer.is_authenticated and viewer.is_active):
        return SavedReport.objects.none()
    shared = Q(owner=viewer) | Q(shared_users=viewer)
    if viewer.role_id:
        shared |= Q(shared_roles=viewer.role_id)
    return SavedReport.objects.filter(shared).distinct().select_related("owner")


def save_report(
    owner: User,
    name: str,
    group_by: str,
    filters: queries.Filters,
    *,
    users: Iterable[User] = (),
    roles: Iterable[Role] = (),
    schedule: str = "",
) -> SavedReport:
    """Save a report under ``name`` (``BadReport`` in words: no name, too long, taken, or
    a report that cannot be made)."""
    name = name.strip()
    if not name:
        raise queries.BadReport("name", "Give the report a name.")
    if len(name) > NAME_MAX:
        raise queries.BadReport("name", f"A name has at most {NAME_MAX} characters.")
    queries.check(group_by, filters)
    if schedule not in Schedule.values:
        raise queries.BadReport(
            "schedule", f"Choose a schedule among: {', '.join(Schedule.values[1:])}."
        )
    try:
        with transaction.atomic():
            report = SavedReport.objects.create(
                owner=owner,
                name=name,
                group_by=group_by,
                after=filters.after,
                before=filters.before,
                source=filters.source or "",
                sentiment=filters.sentiment or "",
                intent=filters.intent or "",
                schedule=schedule,
            )
    except IntegrityError:
        raise queries.BadReport("name", f"You already have a report named “{name}”.") from None
    report.shared_users.set([u for u in users if u.pk != owner.pk])
    report.shared_roles.set(list(roles))
    return report


def delete_report(actor: User, report: SavedReport) -> None:
    if report.owner_id != actor.pk:
        raise NotAllowed("Only the person who saved a report may delete it.")
    report.delete()


def filters_of(report: SavedReport) -> queries.Filters:
    return queries.Filters(
        after=report.after,
        before=report.before,
        source=report.source or None,
        sentiment=report.sentiment or None,
        intent=report.intent or None,
    )


def page_path(report: SavedReport) -> str:
    """The path of the Reports page showing ``report`` (its figures: the opener's own)."""
    query = {
        "group_by": report.group_by,
        "after": report.after.isoformat() if report.after else "",
        "before": report.before.isoformat() if report.before else "",
        "source": report.source,
    }
    # Email intelligence's filters, when the report has them.
    query |= {k: v for k, v in (("sentiment", report.sentiment), ("intent", report.intent)) if v}
    return f"{reverse('web:reports')}?{urlencode(query)}"
