"""The PHQ-9, GAD-7 and ISI scores of a case over time, as an SVG drawn on the server.

Each instrument is drawn as a share of its own maximum score, so the three
fit one scale; the points carry the raw score in their tooltip. Colours are
presentation attributes, not inline styles, so the page's CSP needs nothing
beyond its own origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.schemas import INSTRUMENT_MAX

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 110, 14, 30
SERIES = (("phq9", "PHQ-9", "#1f6fb2"), ("gad7", "GAD-7", "#c2571a"), ("isi", "ISI", "#2e8540"))


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Line:
    """One instrument's scores as a polyline, and its points."""

    name: str
    colour: str
    points: list[Point]

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Chart:
    """What the template draws: lines, axis ticks and the plot's frame."""

    lines: list[Line]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def build(assessments: Sequence[Any]) -> Chart | None:
    """The chart of these assessments, or None when there is nothing to draw."""
    if not assessments:
        return None
    times = [a.taken_at for a in assessments]
    start, end = min(times), max(times)
    span = (end - start).total_seconds()

    def x(at: datetime) -> float:
        share = (at - start).total_seconds() / span if span else 0.5
        return LEFT + (WIDTH - LEFT - RIGHT) * share

    def y(share: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - share)

    lines = []
    for instrument, name, colour in SERIES:
        top = INSTRUMENT_MAX[instrument]
        taken = sorted((a for a in assessments if a.instrument == instrument), key=_taken)
        points = [
            Point(x(a.taken_at), y(a.score / top), f"{name} {a.score}/{top}, {_day(a.taken_at)}")
            for a in taken
        ]
        if points:
            lines.append(Line(name, colour, points))
    x_ticks = sorted({(x(start), _day(start)), (x(end), _day(end))})
    y_ticks = [(y(share), f"{round(share * 100)}%") for share in (0, 0.5, 1)]
    return Chart(lines, x_ticks, y_ticks)


def _taken(assessment: Any) -> datetime:
    return assessment.taken_at


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")
