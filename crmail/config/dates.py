"""Dates in words for Python code (messages, the command line), in the one format the
templates use through ``|date:"DATE_FORMAT"`` and ``|date:"DATETIME_FORMAT"``
(``crmail/config/formats``): "3 Dec 2026" and "3 Dec 2026, 14:05", in crmail's time zone."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import formats, timezone


def when(value: datetime | None) -> str:
    """ "3 Dec 2026, 14:05"; empty for None."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, "DATETIME_FORMAT")


def day(value: date | datetime | None) -> str:
    """ "3 Dec 2026"; empty for None."""
    if value is None:
        return ""
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, "DATE_FORMAT")
