"""Small template helpers of the web UI (all output escaped by Django's ``format_html``)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from crmail.config import dates, words
from crmail.mail.models import ParseState
from crmail.web.modules import Column

register = template.Library()

EMPTY = mark_safe('<span class="muted">—</span>')  # a constant


@register.simple_tag
def sort_link(column: Column, current: str) -> dict[str, Any]:
    """Where a column header's link goes: ascending first, then flipping direction."""
    active = current.removeprefix("-") == column.key
    descending = current.startswith("-")
    value = f"-{column.key}" if active and not descending else column.key
    return {
        "value": value,
        "active": active,
        "arrow": "▼" if descending else "▲",
        "aria": "descending" if descending else "ascending",
    }


@register.simple_tag
def heatmap_rows(heatmap: Any) -> SafeString:
    """The rows of a best-time heatmap (``insights.queries.Heatmap``): a day each, an hour
    a cell, shaded by its count, its count in words for screen readers. Written here:
    the template's loops over the 168 cells took more than half of a contact page's
    rendering."""
    rows = []
    for day, cells in heatmap.rows():
        hours = []
        for hour, count, level, best in cells:
            when = f"{day} {hour:02d}:00: {count}"
            said = format_html('<span class="visually-hidden">{}</span>', when) if count else ""
            hours.append((level, " best" if best else "", when, said))
        rows.append(
            format_html(
                '<tr><th scope="row">{}</th>{}</tr>',
                day[:3],
                format_html_join("", '<td class="heat-{}{}" title="{}">{}</td>', hours),
            )
        )
    return format_html_join("", "{}", ((row,) for row in rows))


def _link(module: str, record: Any, text: Any = None) -> SafeString:
    url = reverse("web:record_detail", kwargs={"module": module, "pk": record.pk})
    return format_html('<a href="{}">{}</a>', url, text if text is not None else record)


@register.simple_tag
def cell(row: Any, column: Column, module: str) -> SafeString | str:
    """One table cell of a record list."""
    key = column.key
    if key == "name":
        return _link(module, row, str(row) or "(no name)")
    if key == "email":
        return row.primary_email or EMPTY
    if key == "account":
        account = getattr(row, "visible_account", None)
        return _link("accounts", account) if account else EMPTY
    if key == "owner":
        return row.owner.name or row.owner.email
    if key == "modified":
        return dates.day(row.modified_at)
    if key == "status":
        return row.get_status_display()
    if key == "stage":
        return row.stage.name
    if key == "amount":
        return money(row.amount)
    if key == "closing_date":
        return dates.day(row.closing_date) if row.closing_date else EMPTY
    value = getattr(row, key, "")
    return value if value not in ("", None) else EMPTY


@register.filter
def money(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return formats.number_format(value, decimal_pos=2, use_l10n=True, force_grouping=True)


@register.filter
def subject_of(message: Any) -> str:
    """A message's subject as lists show it: "Processing…" while a sync is still reading
    the message (stored, not parsed yet), "(no subject)" for mail without one."""
    if message.subject:
        return str(message.subject)
    return "Processing…" if message.parse_state == ParseState.PENDING else "(no subject)"


@register.filter
def snippet_of(message: Any) -> str:
    """A message's snippet as lists show it: "Processing…" while its body is still being
    read after a first sync (decision 064)."""
    if message.snippet:
        return str(message.snippet)
    return "Processing…" if message.parse_state == ParseState.PROCESSING else ""


@register.filter
def storage_size(value: Any) -> str:
    """Bytes as storage counts them, in decimal units: "12.3 MB" (``config.words.size``)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return "—"
    return ("-" if n < 0 else "") + words.size(abs(n))


@register.filter
def show(value: Any) -> Any:
    """A detail value, or a dash for nothing."""
    if value is None or value == "":
        return EMPTY
    return value


@register.filter
def waiting_since(value: Any, now: Any) -> str:
    """How long since ``value`` (a datetime), in whole days or hours: "3 days", "5 hours"."""
    if value is None or now is None:
        return ""
    seconds = max(0, int((now - value).total_seconds()))
    if seconds >= 86400:
        return words.count(seconds // 86400, "day")
    if seconds >= 3600:
        return words.count(seconds // 3600, "hour")
    return "less than an hour"
