"""The bars' labels: as many as fit under the chart, none running into the next or past
the chart's edge."""

from __future__ import annotations

import itertools

from crmail.reports.charts import WIDTH, Stack, bars

# What a character of a label takes at least, at 11 px in a sans-serif face.
CHAR = 6.0

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August"]
MONTHS += ["September", "October", "November", "December"]


def months(count: int) -> list[Stack]:
    names = [f"{MONTHS[n % 12]} {2002 + n // 12}" for n in range(count)]
    return [Stack(name, 1.0, 0.0, name) for name in names]


def shown(count: int) -> list[tuple[float, str]]:
    chart = bars("Volume", ("Inbound", "Outbound"), months(count))
    return [(bar.x, bar.label) for bar in chart.bars if bar.show_label]


def test_labels_of_many_months_neither_touch_nor_run_past_the_chart():
    for count in (13, 40, 120, 323):
        labels = shown(count)
        assert len(labels) >= 4, count
        for (x, label), (next_x, _) in itertools.pairwise(labels):
            assert x + len(label) * CHAR < next_x, (count, label)
        assert all(x + len(label) * CHAR <= WIDTH for x, label in labels), count


def test_a_few_bars_are_each_labelled():
    assert [label for _, label in shown(6)] == [s.label for s in months(6)]
