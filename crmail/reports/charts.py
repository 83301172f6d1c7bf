"""A report as a bar chart drawn on the server (SPEC F17): geometry only, in numbers.

The page draws it as inline SVG from these numbers (``web/reports/_chart.html``): no
script, no remote resource, nothing the Content-Security-Policy refuses. Each row is a
bar, its inbound messages at the bottom and its outbound ones stacked on them; over time
(month, week, day) the bars are the periods in order, empty ones included, so the chart
is the volume over time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from crmail.reports.queries import PERIODS, Report

WIDTH = 720
HEIGHT = 260
LEFT = 48  # room for the counts on the axis
BOTTOM = 40  # room for the labels under the bars
TOP = 12
MAX_LABELS = 12  # labels under the bars; the others are in each bar's title


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    inbound_y: float
    inbound_height: float
    outbound_y: float
    outbound_height: float
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
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    base: float = HEIGHT - BOTTOM  # the y of the axis
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)

    @property
    def label_y(self) -> float:
        return self.base + 16


def _step(top: int) -> int:
    """A round step for about four ticks up to ``top``: 1, 2, 5, 10, 20, 50…"""
    rough = max(1, top / 4)
    power = 10 ** math.floor(math.log10(rough))
    for nice in (1, 2, 5, 10):
        if nice * power >= rough:
            return int(nice * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def chart(report: Report) -> Chart | None:
    """The report's bars (None when it has no rows)."""
    if not report.rows:
        return None
    over_time = report.group_by in PERIODS
    title = "Volume over time" if over_time else "Messages by " + report.group_by.replace("_", " ")
    drawn = Chart(title=title)
    highest = max(r.count for r in report.rows)
    step = _step(highest)
    top = max(step, math.ceil(highest / step) * step)
    plot_height = drawn.base - TOP
    slot = (WIDTH - LEFT - 8) / len(report.rows)
    every = max(1, math.ceil(len(report.rows) / MAX_LABELS))
    for value in range(0, top + 1, step):
        drawn.ticks.append(Tick(round(drawn.base - plot_height * value / top, 1), value))
    for i, row in enumerate(report.rows):
        inbound_h = plot_height * row.inbound / top
        outbound_h = plot_height * row.outbound / top
        x = LEFT + i * slot + slot * 0.15
        drawn.bars.append(
            Bar(
                x=round(x, 1),
                width=round(max(1.0, slot * 0.7), 1),
                inbound_y=round(drawn.base - inbound_h, 1),
                inbound_height=round(inbound_h, 1),
                outbound_y=round(drawn.base - inbound_h - outbound_h, 1),
                outbound_height=round(outbound_h, 1),
                label=row.label if len(row.label) <= 14 else row.label[:13] + "…",
                title=f"{row.label}: {row.count} ({row.inbound} in, {row.outbound} out)",
                show_label=i % every == 0,
            )
        )
    return drawn
