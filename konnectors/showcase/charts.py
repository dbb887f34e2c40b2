"""Small inline SVG charts: bars, lines, a day-by-hour calendar. No script, no network.

Each chart is a ``<figure class="chart" data-points="N">``; N counts the values drawn, so a
test can tell an empty chart from a full one.
"""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, PAD = 900, 260, 40
COLORS = {"electricity": "#2a6fdb", "gas": "#e8590c", "temperature": "#c2255c", "curve": "#2f9e44"}
LEVEL_COLORS = {0: "#2f9e44", 1: "#d3f9d8", 2: "#f59f00", 3: "#e03131"}


def _figure(title: str, body: str, points: int, legend: str = "", height: int = HEIGHT) -> str:
    if not points:
        body = (
            f'<text class="no-data" x="{WIDTH / 2:.0f}" y="{height / 2:.0f}" font-size="18" fill="#888" '
            'text-anchor="middle">no data yet: run the konnector that collects it</text>'
        )
    return (
        f'<figure class="chart" data-points="{points}"><figcaption>{escape(title)}</figcaption>'
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">{body}</svg>'
        f"{legend}</figure>"
    )


def _scale(values: list[float]) -> float:
    top = max((abs(v) for v in values), default=0.0)
    return (HEIGHT - 2 * PAD) / top if top else 0.0


def _axis(top_label: str, first: str, last: str, x_label: str, y_label: str) -> str:
    """The baseline, its first and last labels, the top value, and both axis titles (with units)."""
    middle, height = WIDTH / 2, HEIGHT - 2 * PAD
    return (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>'
        f'<text x="{PAD}" y="{PAD - 8}" font-size="12">{escape(top_label)}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 10}" font-size="12">{escape(first)}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 10}" font-size="12" text-anchor="end">{escape(last)}</text>'
        f'<text class="x-label" x="{middle:.0f}" y="{HEIGHT - 10}" font-size="12" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text class="y-label" x="14" y="{PAD + height / 2:.0f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {PAD + height / 2:.0f})">{escape(y_label)}</text>'
    )


def bars(title: str, series: dict[str, list[tuple[str, float]]], unit: str, x_label: str = "date") -> str:
    """Grouped bars: ``{series name: [(label, value)]}``; labels shared by position."""
    series = {name: points for name, points in series.items() if points}
    labels = sorted({label for points in series.values() for label, _ in points})
    if not labels:
        return _figure(title, "", 0)
    values = {name: dict(points) for name, points in series.items()}
    scale = _scale([v for points in series.values() for _, v in points])
    slot = (WIDTH - 2 * PAD) / len(labels)
    width = max(1.0, slot * 0.8 / len(series))
    shapes = []
    for index, label in enumerate(labels):
        for offset, (name, by_label) in enumerate(values.items()):
            if label in by_label:
                height = by_label[label] * scale
                x = PAD + index * slot + offset * width
                shapes.append(
                    f'<rect x="{x:.1f}" y="{HEIGHT - PAD - height:.1f}" width="{width:.1f}" '
                    f'height="{height:.1f}" fill="{COLORS.get(name, "#555")}">'
                    f"<title>{escape(label)}: {by_label[label]:.1f} {unit}</title></rect>"
                )
    top = max(v for points in series.values() for _, v in points)
    legend = _legend(series)
    axis = _axis(f"{top:.1f} {unit}", labels[0], labels[-1], x_label, f"energy ({unit})")
    return _figure(title, axis + "".join(shapes), len(shapes), legend)


def line(
    title: str, series: dict[str, list[tuple[str, float]]], unit: str, x_label: str = "time", y_label: str = ""
) -> str:
    """Lines over shared, sorted labels (one per point); each series scaled to its own range."""
    series = {name: points for name, points in series.items() if points}
    labels = sorted({label for points in series.values() for label, _ in points})
    if len(labels) < 2:
        return _figure(title, "", 0)
    position = {label: PAD + i * (WIDTH - 2 * PAD) / (len(labels) - 1) for i, label in enumerate(labels)}
    paths, count = [], 0
    for name, points in series.items():
        values = [v for _, v in points]
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        coordinates = " ".join(
            f"{position[label]:.1f},{HEIGHT - PAD - (value - low) / span * (HEIGHT - 2 * PAD):.1f}"
            for label, value in sorted(points)
        )
        paths.append(
            f'<polyline fill="none" stroke="{COLORS.get(name, "#555")}" stroke-width="1.5" '
            f'points="{coordinates}"><title>{escape(name)}: {low:.1f} to {high:.1f}</title></polyline>'
        )
        count += len(points)
    axis = _axis(unit, labels[0], labels[-1], x_label, y_label or unit)
    return _figure(title, axis + "".join(paths), count, _legend(series))


def calendar(title: str, days: list[tuple[str, list[int]]], notes: list[str]) -> str:
    """Days in rows, hours in columns, coloured by Ecowatt level; ``notes`` listed below."""
    cell_w, cell_h = (WIDTH - 2 * PAD - 90) / 25, 22
    shapes = [
        f'<text class="x-label" x="{PAD + 90}" y="{PAD - 8}" font-size="12">hour of day, 0 to 23 (local time) →</text>'
    ]
    for row, (day, levels) in enumerate(days):
        y = PAD + row * (cell_h + 4)
        shapes.append(f'<text x="{PAD}" y="{y + 15}" font-size="12">{escape(day)}</text>')
        for hour, level in enumerate(levels):
            x = PAD + 90 + hour * cell_w
            shapes.append(
                f'<rect x="{x:.1f}" y="{y}" width="{cell_w - 2:.1f}" height="{cell_h}" '
                f'fill="{LEVEL_COLORS.get(level, "#ccc")}"><title>{escape(day)} {hour}h: level {level}'
                "</title></rect>"
            )
    items = "".join(f"<li>{escape(note)}</li>" for note in notes)
    legend = (
        '<p class="legend">green: decarbonised production, pale: normal, orange: tense, red: very tense</p>'
        f"<ul>{items}</ul>"
    )
    count = sum(len(levels) for _, levels in days)
    return _figure(title, "".join(shapes), count, legend, height=2 * PAD + len(days) * (cell_h + 4))


def _legend(series: dict[str, list]) -> str:
    spans = "".join(f'<span style="color:{COLORS.get(name, "#555")}">■ {escape(name)}</span> ' for name in series)
    return f'<p class="legend">{spans}</p>'
