"""Reports as bar charts drawn on the server (SPEC F17): geometry only, in numbers.

The page draws it as inline SVG from these numbers (``web/reports/_chart.html``): no
script, no remote resource, nothing the Content-Security-Policy refuses. In a grouped
report each row is a bar, its inbound messages at the bottom and its outbound ones
stacked on them; over time (month, week, day) the bars are the periods in order, empty
ones included, so the chart is the volume over time. Response times: a bar per user up
to the 90th percentile, its lower part up to the median.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from crmail.reports.engagement import Engagement, rate
from crmail.reports.queries import PERIODS, Report
from crmail.reports.response_times import ResponseTimes

WIDTH = 720
HEIGHT = 260
LEFT = 48  # room for the counts on the axis
BOTTOM = 40  # room for the labels under the bars
TOP = 12
MAX_LABELS = 12  # labels under the bars; the others are in each bar's title
# About how wide a label's character is, in the chart's units (11 px text in a sans-serif
# face), and the room kept between two labels: labels that would touch are left out.
LABEL_CHAR = 6.5
LABEL_GAP = 10


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    low_y: float
    low_height: float
    high_y: float
    high_height: float
    label: str
    title: str  # what a pointer over the bar says: label and figures
    show_label: bool


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass
class Chart:
    title: str
    legend: tuple[str, str] = ("Inbound", "Outbound")
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    base: float = HEIGHT - BOTTOM  # the y of the axis
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)

    @property
    def label_y(self) -> float:
        return self.base + 16


def _step(top: float) -> int:
    """A round step for about four ticks up to ``top``: 1, 2, 5, 10, 20, 50…"""
    rough = max(1, top / 4)
    power = 10 ** math.floor(math.log10(rough))
    for nice in (1, 2, 5, 10):
        if nice * power >= rough:
            return int(nice * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class Stack:
    """One bar: ``low`` at the bottom, ``high`` stacked on it (values in the chart's unit)."""

    label: str
    low: float
    high: float
    title: str


def chart(report: Report) -> Chart | None:
    """The report's bars, inbound below outbound (None when it has no rows)."""
    if not report.rows:
        return None
    over_time = report.group_by in PERIODS
    title = "Volume over time" if over_time else "Messages by " + report.group_by.replace("_", " ")
    stacks = [
        Stack(
            r.label,
            r.inbound,
            r.outbound,
            f"{r.label}: {r.count} ({r.inbound} in, {r.outbound} out)",
        )
        for r in report.rows
    ]
    return bars(title, ("Inbound", "Outbound"), stacks)


def response_chart(times: ResponseTimes) -> Chart | None:
    """Per user, a bar up to the 90th percentile of their response time, its lower part
    up to the median; in hours (None when nobody answered)."""
    if not times.rows:
        return None
    stacks = []
    for row in times.rows:
        median_h = row.median.total_seconds() / 3600
        p90_h = row.p90.total_seconds() / 3600
        stacks.append(
            Stack(
                row.label,
                median_h,
                max(0.0, p90_h - median_h),
                f"{row.label}: median {hours(row.median)}, 90 % within {hours(row.p90)}"
                f" ({row.replied} answered)",
            )
        )
    return bars("Response time (hours)", ("Median", "90th percentile"), stacks)


def engagement_chart(found: Engagement) -> Chart | None:
    """Per period, a bar up to the open rate (percent of the tracked mail), its lower part
    the mail both opened and clicked (None when nothing was tracked)."""
    if not any(r.tracked for r in found.rows):
        return None
    stacks = []
    for row in found.rows:
        both = rate(row.both, row.tracked) or 0
        opened = rate(row.opened, row.tracked) or 0
        words = (
            f"{row.label}: opened {row.open_rate} %, clicked {row.click_rate} %"
            f" of {row.tracked} tracked"
            if row.tracked
            else f"{row.label}: nothing tracked"
        )
        stacks.append(Stack(row.label, both, max(0, opened - both), words))
    return bars("Open rate (%)", ("Opened and clicked", "Opened only"), stacks)


def hours(span: timedelta) -> str:
    """``2 h 05 min``, ``35 min``, ``3 days 4 h``: a response time in words."""
    minutes = round(span.total_seconds() / 60)
    days, minutes = divmod(minutes, 24 * 60)
    h, m = divmod(minutes, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {h} h"
    return f"{h} h {m:02d} min" if h else f"{m} min"


def bars(title: str, legend: tuple[str, str], stacks: list[Stack]) -> Chart:
    drawn = Chart(title=title, legend=legend)
    highest = max(s.low + s.high for s in stacks)
    step = _step(highest)
    top = max(step, math.ceil(highest / step) * step)
    plot_height = drawn.base - TOP
    slot = (WIDTH - LEFT - 8) / len(stacks)
    labels = [s.label if len(s.label) <= 14 else s.label[:13] + "…" for s in stacks]
    room = max(map(len, labels)) * LABEL_CHAR + LABEL_GAP
    every = max(1, math.ceil(len(stacks) / MAX_LABELS), math.ceil(room / slot))
    for value in range(0, top + 1, step):
        drawn.ticks.append(Tick(round(drawn.base - plot_height * value / top, 1), value))
    for i, (stack, label) in enumerate(zip(stacks, labels, strict=True)):
        low_h = plot_height * stack.low / top
        high_h = plot_height * stack.high / top
        x = LEFT + i * slot + slot * 0.15
        drawn.bars.append(
            Bar(
                x=round(x, 1),
                width=round(max(1.0, slot * 0.7), 1),
                low_y=round(drawn.base - low_h, 1),
                low_height=round(low_h, 1),
                high_y=round(drawn.base - low_h - high_h, 1),
                high_height=round(high_h, 1),
                label=label,
                title=stack.title,
                # A label starts at its bar: one that would run past the chart is left out.
                show_label=i % every == 0 and x + len(label) * LABEL_CHAR <= WIDTH,
            )
        )
    return drawn
