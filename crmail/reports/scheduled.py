"""Scheduled mail of a saved report (SPEC F17): to its owner, through crmail's own mail.

A saved report with a schedule is mailed to its owner every day, every Monday or on the
1st, from ``CRMAIL_DIGEST_HOUR`` (the organisation's time zone, as the daily digest),
counting **the period just ended** (the day, the week or the month before) with the
report's grouping and source, through the owner's own visibility — what the owner would
see on the page. Others it is shared with open it on the page.

Each report's day is claimed before sending (``last_mailed_on``), so two workers never
mail it twice; a failure gives the day back for the next run (every hour) to try again.
A run that misses the day (crmail stopped) mails at the next run within the same week or
month; a day missed by a daily report is not made up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crmail.config.durable import claimed
from crmail.mail.system import SystemMailError, send
from crmail.notifications.digest import digest_hour
from crmail.reports import queries
from crmail.reports.models import SavedReport, Schedule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    sent: int = 0
    failed: int = 0


def period_of(schedule: str, today: date) -> tuple[date, date]:
    """The period a mail sent ``today`` counts: [start, end) of the day, week (Monday to
    Sunday) or month before."""
    if schedule == Schedule.DAILY:
        return today - timedelta(days=1), today
    if schedule == Schedule.WEEKLY:
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday
    first = today.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1), first


def _period_start(schedule: str, today: date) -> date:
    """The first day on which this period's mail is due."""
    return period_of(schedule, today)[1]


def send_due(now: datetime | None = None) -> Outcome:
    """Mail every scheduled report whose mail for the period just ended has not gone out,
    once the hour has come."""
    local = timezone.localtime(now or timezone.now())
    if local.hour < digest_hour():
        return Outcome()
    today = local.date()
    sent = failed = 0
    due = SavedReport.objects.exclude(schedule="").filter(owner__is_active=True)
    for report in list(due.select_related("owner")):
        start = _period_start(report.schedule, today)
        if report.last_mailed_on is not None and report.last_mailed_on >= start:
            continue
        if not _claim(report, start, today):
            continue  # another worker has it
        try:
            send(report.owner.email, *compose(report, today))
        except SystemMailError as exc:
            failed += 1
            SavedReport.objects.filter(pk=report.pk).update(last_mailed_on=report.last_mailed_on)
            log.warning("reports: the scheduled report %s was not mailed: %s", report.pk, exc)
        else:
            sent += 1
    return Outcome(sent=sent, failed=failed)


def _claim(report: SavedReport, start: date, today: date) -> bool:
    with transaction.atomic():
        updated = (
            SavedReport.objects.filter(pk=report.pk)
            .filter(Q(last_mailed_on__isnull=True) | Q(last_mailed_on__lt=start))
            .update(last_mailed_on=today)
        )
    return claimed(updated)  # on disk before the mail goes (decision 078)


def compose(report: SavedReport, today: date) -> tuple[str, str]:
    """(subject, text) of the report's mail: the period just ended, as a table."""
    after, before = period_of(report.schedule, today)
    filters = queries.Filters(
        after=after,
        before=before,
        source=report.source or None,
        sentiment=report.sentiment or None,
        intent=report.intent or None,
    )
    figures = queries.email_report(report.owner, report.group_by, filters)
    last = before - timedelta(days=1)
    period = after.isoformat() if after == last else f"{after.isoformat()} to {last.isoformat()}"
    lines = [
        f"{report.name}: the mail you may open, {period}, by "
        f"{queries.GROUPS[report.group_by].lower()}"
        + (f", {queries.SOURCES[report.source]} only" if report.source else "")
        + (f", {report.sentiment} mail only" if report.sentiment else "")
        + (f", intent {report.intent} only" if report.intent else "")
        + ".",
        "",
        f"{figures.total} messages: {figures.inbound} inbound, {figures.outbound} outbound.",
        "",
    ]
    width = max([len(r.label) for r in figures.rows] + [5])
    lines.append(f"{'':{width}}  {'In':>6}  {'Out':>6}  {'Count':>6}")
    for row in figures.rows:
        lines.append(f"{row.label:{width}}  {row.inbound:>6}  {row.outbound:>6}  {row.count:>6}")
    if not figures.rows:
        lines.append("(no mail)")
    if settings.CRMAIL_PUBLIC_URL:
        lines += ["", f"In crmail: {settings.CRMAIL_PUBLIC_URL}/reports/"]
    lines += [
        "",
        "You get this mail because you scheduled this report;"
        " delete it on the Reports page to stop it.",
    ]
    return f"Report: {report.name} ({period})", "\n".join(lines) + "\n"
