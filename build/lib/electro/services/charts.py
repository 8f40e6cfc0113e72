"""Small bar charts as inline SVG, drawn on the server (no chart script; CSP-safe: only SVG
presentation attributes and classes, never a ``style`` attribute)."""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

WIDTH = 360
HEIGHT = 140
LEFT = 28  # room for the y-axis labels
BOTTOM = 18  # room for the x-axis labels
TOP = 8


def bar_chart(title: str, points: list[tuple[date, int]]) -> Markup:
    """One ``<rect class="bar">`` per day, height proportional to its value (the tallest bar
    fills the plot), a ``<title>`` per bar for hover, the max and 0 on the y-axis and the first
    and last day on the x-axis. Every piece of text is escaped."""
    plot_w = WIDTH - LEFT
    plot_h = HEIGHT - TOP - BOTTOM
    top = max((value for _, value in points), default=0)
    slot = plot_w / max(len(points), 1)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH}" y2="{TOP + plot_h}"/>',
        f'<text class="axis-label" x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{top}</text>',
        f'<text class="axis-label" x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, (day, value) in enumerate(points):
        height = plot_h * value / top if top else 0.0
        parts.append(
            f'<rect class="bar" x="{LEFT + i * slot + 1:.2f}" y="{TOP + plot_h - height:.2f}" '
            f'width="{max(slot - 2, 1):.2f}" height="{height:.2f}">'
            f"<title>{day.isoformat()}: {value}</title></rect>"
        )
    if points:
        label_y = HEIGHT - 4
        parts.append(f'<text class="axis-label" x="{LEFT}" y="{label_y}">'
                     f"{points[0][0].strftime('%d %b')}</text>")
        parts.append(f'<text class="axis-label" x="{WIDTH}" y="{label_y}" text-anchor="end">'
                     f"{points[-1][0].strftime('%d %b')}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built above from numbers, dates and escape()
