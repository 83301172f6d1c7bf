"""``{% load reports %}``: the Reports page's words for figures."""

from __future__ import annotations

from datetime import timedelta

from django import template

from crmail.reports.charts import hours

register = template.Library()


@register.filter
def response_time(span: timedelta) -> str:
    """``2 h 05 min``: a response time in words."""
    return hours(span)
