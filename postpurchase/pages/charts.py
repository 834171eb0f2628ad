"""Charts as inline SVG drawn on the server: no script and nothing fetched by the browser.

Colours come from the page's CSS variables (``currentColor`` and ``var(--accent)``), so a chart
follows the light or dark theme with the rest of the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_WIDTH, _HEIGHT, _PAD = 640, 160, 24


def _nice_top(value: float) -> float:
    """The axis' top: the smallest 1, 2 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def _frame(title: str, top: float, unit: str, body: list[str], labels: list[str]) -> str:
    head = (
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT + 2 * _PAD}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
        f'<text x="0" y="12" class="chart-axis">{escape(_fmt(top))}{escape(unit)}</text>'
        f'<line x1="{_PAD}" y1="{_PAD + _HEIGHT}" x2="{_WIDTH}" y2="{_PAD + _HEIGHT}" '
        'class="chart-base"/>'
    )
    return head + "".join(body) + "".join(labels) + "</svg>"


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _labels(names: Sequence[str], x_of: list[float]) -> list[str]:
    every = max(1, len(names) // 8)  # at most about eight labels: they stay readable
    return [
        f'<text x="{x:.1f}" y="{_HEIGHT + 2 * _PAD - 4}" class="chart-axis" '
        f'text-anchor="middle">{escape(name)}</text>'
        for i, (name, x) in enumerate(zip(names, x_of, strict=True))
        if i % every == 0
    ]


def bar_chart(points: Sequence[tuple[str, float]], *, title: str, unit: str = "") -> str:
    """Bars for ``(label, value)`` pairs, each bar titled with its exact value on hover."""
    top = _nice_top(max((v for _, v in points), default=0))
    slot = (_WIDTH - _PAD) / max(len(points), 1)
    body, xs = [], []
    for i, (name, value) in enumerate(points):
        height = _HEIGHT * value / top
        x = _PAD + i * slot
        xs.append(x + slot / 2)
        body.append(
            f'<rect x="{x + slot * 0.1:.1f}" y="{_PAD + _HEIGHT - height:.1f}" '
            f'width="{slot * 0.8:.1f}" height="{height:.1f}" class="chart-bar">'
            f"<title>{escape(name)}: {escape(_fmt(value))}{escape(unit)}</title></rect>"
        )
    return _frame(title, top, unit, body, _labels([n for n, _ in points], xs))


def line_chart(points: Sequence[tuple[str, float | None]], *, title: str, unit: str = "") -> str:
    """A line through ``(label, value)`` pairs; a None value breaks the line (no data)."""
    top = _nice_top(max((v for _, v in points if v is not None), default=0))
    slot = (_WIDTH - _PAD) / max(len(points), 1)
    xs = [_PAD + slot * (i + 0.5) for i in range(len(points))]
    runs: list[list[str]] = [[]]
    dots = []
    for x, (name, value) in zip(xs, points, strict=True):
        if value is None:
            runs.append([])
            continue
        y = _PAD + _HEIGHT - _HEIGHT * value / top
        runs[-1].append(f"{x:.1f},{y:.1f}")
        dots.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="chart-dot">'
            f"<title>{escape(name)}: {escape(_fmt(value))}{escape(unit)}</title></circle>"
        )
    lines = [
        f'<polyline points="{" ".join(run)}" class="chart-line"/>' for run in runs if len(run) > 1
    ]
    return _frame(title, top, unit, lines + dots, _labels([n for n, _ in points], xs))
