"""The cohort's trajectories as a plain SVG document, drawn here without a plotting library.

One line per instrument for the median score by week after the first dose, a
shaded band for the interquartile range, each instrument's remission
threshold as a dashed line, and the number of cases measured under each week.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from workflow.cohort import WeekSummary
from workflow.outcomes import definitions

WIDTH, HEIGHT = 840, 500
LEFT, RIGHT, TOP, BOTTOM = 84, 190, 78, 112
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
Y_MAX = 28
COLOURS = {"phq9": "#1b6ca8", "isi": "#c2561a", "gad7": "#3f8f3f"}
FONT = "font-family='Helvetica, Arial, sans-serif'"


def _x(week: float, last_week: int) -> float:
    return LEFT + PLOT_W * week / max(last_week, 1)


def _y(score: float) -> float:
    return TOP + PLOT_H * (1 - score / Y_MAX)


def _tag(name: str, content: str | None = None, /, **attrs: object) -> str:
    """An SVG element: ``stroke_width=2`` is written ``stroke-width='2'``, a float to 0.1."""
    written = " ".join(
        f"{k.replace('_', '-')}='{f'{v:.1f}' if isinstance(v, float) else v}'"
        for k, v in attrs.items()
    )
    return f"<{name} {written}/>" if content is None else f"<{name} {written}>{content}</{name}>"


def _text(x: float, y: float, text: str, size: int = 12, **attrs: object) -> str:
    position: dict[str, object] = {"x": float(x), "y": float(y), "font_size": size}
    return _tag("text", escape(text), **position, **attrs)


def _hline(y: float, stroke: str, **attrs: object) -> str:
    return _tag("line", x1=LEFT, x2=LEFT + PLOT_W, y1=y, y2=y, stroke=stroke, **attrs)


def _axes(last_week: int) -> list[str]:
    bottom = TOP + PLOT_H
    parts = []
    for score in range(0, Y_MAX + 1, 5):
        parts.append(_hline(_y(score), "#e3e3e3"))
        parts.append(_text(LEFT - 8, _y(score) + 4, str(score), text_anchor="end", fill="#444"))
    for week in range(0, last_week + 1, 1 if last_week <= 16 else 4):
        x = _x(week, last_week)
        parts.append(_tag("line", x1=x, x2=x, y1=bottom, y2=bottom + 5, stroke="#444"))
        parts.append(_text(x, bottom + 19, str(week), text_anchor="middle", fill="#444"))
    middle = LEFT + PLOT_W / 2
    return [
        *parts,
        _tag("rect", x=LEFT, y=TOP, width=PLOT_W, height=PLOT_H, fill="none", stroke="#444"),
        _text(middle, bottom + 38, "Weeks after the first dose", 13, text_anchor="middle"),
        _text(
            0,
            0,
            "Score (lower is better)",
            13,
            text_anchor="middle",
            transform=f"translate(30 {TOP + PLOT_H / 2:.0f}) rotate(-90)",
        ),
    ]


def _threshold(instrument: str) -> list[str]:
    d = definitions()[instrument]
    y, colour = _y(d.remission_below), COLOURS[instrument]
    label = f"{d.label} remission (< {d.remission_below})"
    return [
        _hline(y, colour, stroke_dasharray="5 4"),
        _text(LEFT + PLOT_W - 4, y - 4, label, 10, text_anchor="end", fill=colour),
    ]


def _series(instrument: str, weeks: Sequence[WeekSummary], last_week: int) -> list[str]:
    colour = COLOURS[instrument]

    def point(w: WeekSummary, score: float) -> str:
        return f"{_x(w.week, last_week):.1f},{_y(score):.1f}"

    band = [point(w, w.q3) for w in weeks] + [point(w, w.q1) for w in reversed(weeks)]
    median = " ".join(point(w, w.median) for w in weeks)
    parts = [
        _tag("polygon", points=" ".join(band), fill=colour, fill_opacity=0.18),
        _tag("polyline", points=median, fill="none", stroke=colour, stroke_width=2.5),
    ]
    for w in weeks:
        parts.append(_tag("circle", cx=_x(w.week, last_week), cy=_y(w.median), r=3.5, fill=colour))
    return parts


def _counts(series: dict[str, list[WeekSummary]], last_week: int) -> list[str]:
    """The number of cases measured each week, one row per instrument under the axis."""
    parts = []
    for row, (instrument, weeks) in enumerate(series.items()):
        y, colour = TOP + PLOT_H + 62 + row * 15, COLOURS[instrument]
        label = f"{definitions()[instrument].label} n"
        parts.append(_text(8, y, label, 10, fill=colour))
        for w in weeks:
            x = _x(w.week, last_week)
            parts.append(_text(x, y, f"{w.n:,}", 10, text_anchor="middle", fill=colour))
    if series:
        note = "n: cases measured within 7 days of each week"
        y = TOP + PLOT_H + 66 + len(series) * 15
        parts.append(_text(8, y, note, 10, fill="#444"))
    return parts


def _legend(instruments: Sequence[str]) -> list[str]:
    x, parts = LEFT + PLOT_W + 18, []
    for row, instrument in enumerate(instruments):
        y, colour = TOP + 10 + row * 48, COLOURS[instrument]
        label = definitions()[instrument].label
        parts += [
            _tag("line", x1=x, x2=x + 26, y1=y, y2=y, stroke=colour, stroke_width=2.5),
            _text(x + 34, y + 4, f"{label} median", 12),
            _tag("rect", x=x, y=y + 12, width=26, height=12, fill=colour, fill_opacity=0.18),
            _text(x + 34, y + 22, f"{label} middle 50 %", 12),
        ]
    return parts


def trajectory_svg(
    series: dict[str, list[WeekSummary]], last_week: int, title: str, subtitle: str
) -> str:
    """The SVG document: ``series`` maps an instrument to its weekly summaries."""
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
        f"viewBox='0 0 {WIDTH} {HEIGHT}' {FONT} role='img'>",
        f"<title>{escape(title)}</title>",
        _tag("rect", width=WIDTH, height=HEIGHT, fill="white"),
        _text(LEFT, 30, title, 17, font_weight="bold"),
        _text(LEFT, 52, subtitle, 12, fill="#444"),
        *_axes(last_week),
    ]
    for instrument, weeks in series.items():
        parts += _threshold(instrument) + _series(instrument, weeks, last_week)
    if not any(series.values()):
        message = "No measurements after a first dose in this range."
        parts.append(_text(LEFT + PLOT_W / 2, TOP + PLOT_H / 2, message, 14, text_anchor="middle"))
    parts += _legend(list(series)) + _counts(series, last_week)
    return "\n".join([*parts, "</svg>"]) + "\n"
