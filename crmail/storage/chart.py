"""The growth chart of the storage page, drawn on the server as SVG: no script, no remote
file, nothing a Content-Security-Policy refuses (presentation attributes, no styles)."""

from __future__ import annotations

from datetime import date
from html import escape

from crmail.config.words import size

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 76, 16, 16, 36


def _day(d: date) -> str:
    return f"{d.day} {d:%b} {d.year}"


def growth_svg(points: list[tuple[date, int]], quota: int) -> str:
    """Usage per day as an area under a line, the quota as a dashed line, and labelled
    axes; an empty chart says so."""
    title = "Organisation storage used per day"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="growth-chart" role="img" aria-labelledby="growth-title">'
        f'<title id="growth-title">{title}</title>'
    )
    if not points:
        return (
            f'{head}<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle" '
            'fill="#6b7280" font-size="14">No figures yet: the first is written within '
            "minutes.</text></svg>"
        )
    top = max(max(v for _, v in points), quota, 1)
    top = int(top * 1.1)
    first, last = points[0][0], points[-1][0]
    span = max((last - first).days, 1)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(d: date) -> float:
        if len(points) == 1:
            return LEFT + inner_w / 2
        return LEFT + inner_w * (d - first).days / span

    def y(v: int) -> float:
        return TOP + inner_h * (1 - v / top)

    parts = [head]
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        value = int(top * fraction)
        yy = y(value)
        parts.append(
            f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{WIDTH - RIGHT}" y2="{yy:.1f}" '
            'stroke="#e5e7eb" stroke-width="1"/>'
            f'<text x="{LEFT - 8}" y="{yy + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#6b7280">{escape(size(value))}</text>'
        )
    line = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in points)
    base = y(0)
    area = f"{x(first):.1f},{base:.1f} {line} {x(last):.1f},{base:.1f}"
    parts.append(f'<polygon points="{area}" fill="#2563eb" fill-opacity="0.15"/>')
    parts.append(f'<polyline points="{line}" fill="none" stroke="#2563eb" stroke-width="2"/>')
    for d, v in points[-1:]:
        parts.append(f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="3.5" fill="#2563eb"/>')
    if quota > 0:
        qy = y(quota)
        parts.append(
            f'<line x1="{LEFT}" y1="{qy:.1f}" x2="{WIDTH - RIGHT}" y2="{qy:.1f}" '
            'stroke="#dc2626" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{LEFT + 6}" y="{qy - 6:.1f}" font-size="11" '
            f'fill="#dc2626">Quota {escape(size(quota))}</text>'
        )
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 10}" font-size="11" fill="#6b7280">'
        f"{escape(_day(first))}</text>"
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 10}" text-anchor="end" font-size="11" '
        f'fill="#6b7280">{escape(_day(last))}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
