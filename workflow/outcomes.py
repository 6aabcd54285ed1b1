"""Outcomes (SPEC.md section 10): every definition, for one case and for a cohort.

The definitions are pure functions of a baseline and a later score, with the
thresholds of ``data/outcome_definitions.csv`` (a source on every row), and
the one place that says when a case's first dose was. ``workflow.cohort``
applies the same functions to a whole cohort.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlmodel import Session, col

from models.facts import Assessment, CareSession

INSTRUMENTS = ("phq9", "gad7", "isi")
FLAGS = ("improved", "response", "remission")
"""The outcomes a rate is reported for."""
WILSON_Z = 1.959963984540054
"""The standard normal quantile of a two-sided 95 % interval."""


@dataclass(frozen=True)
class Definition:
    """What response, remission and improvement mean for one instrument."""

    instrument: str
    label: str
    remission_below: int
    improved_drop: int
    response_drop_percent: int
    source: str


@cache
def definitions() -> dict[str, Definition]:
    """The definitions by instrument, read once from the data file."""
    text = (resources.files("workflow") / "data" / "outcome_definitions.csv").read_text("utf-8")
    table = {}
    for row in csv.DictReader(io.StringIO(text)):
        if not row["source"].strip():
            raise ValueError(f"outcome_definitions.csv: row without a source: {row}")
        table[row["instrument"]] = Definition(
            instrument=row["instrument"],
            label=row["label"],
            remission_below=int(row["remission_below"]),
            improved_drop=int(row["improved_drop"]),
            response_drop_percent=int(row["response_drop_percent"]),
            source=row["source"],
        )
    return table


# -- the definitions, as pure functions ---------------------------------------


def change(baseline: int | None, latest: int | None) -> int | None:
    """Latest minus baseline: negative is better."""
    return None if baseline is None or latest is None else latest - baseline


def responded(d: Definition, baseline: int | None, latest: int | None) -> bool | None:
    """A drop of at least ``response_drop_percent`` of the baseline; null from a baseline of 0."""
    if baseline is None or latest is None or baseline == 0:
        return None
    return (baseline - latest) * 100 >= baseline * d.response_drop_percent


def remitted(d: Definition, latest: int | None) -> bool | None:
    """The latest score below the remission threshold."""
    return None if latest is None else latest < d.remission_below


def improved(d: Definition, baseline: int | None, latest: int | None) -> bool | None:
    """A drop of at least ``improved_drop`` points."""
    if baseline is None or latest is None:
        return None
    return baseline - latest >= d.improved_drop


class InstrumentOutcome(BaseModel):
    baseline: int | None = Field(description="Latest score before the first dose (SPEC 0).")
    latest: int | None = Field(description="The score the outcome is judged on.")
    change: int | None = Field(description="`latest` minus `baseline`: negative is better.")
    response: bool | None = Field(description="A drop of at least 50 %.")
    remission: bool | None = Field(description="`latest` below the remission threshold.")
    improved: bool | None = Field(description="A drop of at least the instrument's points.")


def outcome(d: Definition, baseline: int | None, latest: int | None) -> InstrumentOutcome:
    """Every definition for one instrument; null wherever it cannot be computed."""
    return InstrumentOutcome(
        baseline=baseline,
        latest=latest,
        change=change(baseline, latest),
        response=responded(d, baseline, latest),
        remission=remitted(d, latest),
        improved=improved(d, baseline, latest),
    )


def wilson(numerator: int, denominator: int, z: float = WILSON_Z) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95 % by default); None for no trials."""
    if denominator == 0:
        return None
    p = numerator / denominator
    centre = p + z * z / (2 * denominator)
    margin = z * math.sqrt(p * (1 - p) / denominator + z * z / (4 * denominator * denominator))
    scale = 1 + z * z / denominator
    return max(0.0, (centre - margin) / scale), min(1.0, (centre + margin) / scale)


class Rate(BaseModel):
    numerator: int = Field(description="Cases for which the outcome holds.")
    denominator: int = Field(description="Cases for which the outcome could be computed.")
    rate: float | None = Field(description="numerator / denominator; null when it is 0.")
    ci_low: float | None = Field(description="95 % Wilson interval, lower bound.")
    ci_high: float | None = Field(description="95 % Wilson interval, upper bound.")

    @classmethod
    def of(cls, numerator: int, denominator: int) -> Rate:
        interval = wilson(numerator, denominator)
        return cls(
            numerator=numerator,
            denominator=denominator,
            rate=numerator / denominator if denominator else None,
            ci_low=interval[0] if interval else None,
            ci_high=interval[1] if interval else None,
        )


# -- when the first dose was ----------------------------------------------------


def dose_time() -> Any:
    """The column saying when a dosing session's dose was taken: ``dosed_at`` (SPEC 4.4).

    Everything here reads the first dose through it (SPEC section 0: the
    baseline is the latest score before the first ``dosed_at``).
    """
    return CareSession.dosed_at


def first_dose_at(session: Session, case_id: int) -> datetime | None:
    """When the case's first dose was taken, if it has had one."""
    query = select(func.min(dose_time())).where(
        col(CareSession.case_id) == case_id, col(CareSession.kind) == "dosing"
    )
    return session.execute(query).scalar_one_or_none()


def weeks_between(start: datetime, end: datetime) -> float:
    """Weeks from ``start`` to ``end``, to one decimal (negative before ``start``)."""
    return round((end - start) / timedelta(weeks=1), 1)


# -- one case --------------------------------------------------------------------


class Measurement(BaseModel):
    instrument: str
    score: int
    taken_at: datetime
    week: float | None = Field(description="Weeks after the first dose; null before any dose.")


class SleepFollowsMood(BaseModel):
    phq9_change: int | None = Field(description="The PHQ-9 change, beside the ISI's.")
    isi_change: int | None


class CaseOutcomes(BaseModel):
    phq9: InstrumentOutcome
    gad7: InstrumentOutcome
    isi: InstrumentOutcome
    weeks_since_first_dose: float | None = Field(description="Null before the first dose.")
    first_dose_at: datetime | None
    sleep_follows_mood: SleepFollowsMood
    measurements: list[Measurement] = Field(description="Every score, oldest first.")


def baseline_of(scores: Sequence[Assessment], first_dose: datetime | None) -> int | None:
    """The latest score taken before the first dose; before any dose, the latest so far."""
    before = [a for a in scores if first_dose is None or a.taken_at < first_dose]
    return max(before, key=lambda a: (a.taken_at, a.id or 0)).score if before else None


def case_outcomes(
    assessments: Sequence[Assessment], first_dose: datetime | None, now: datetime
) -> CaseOutcomes:
    """Every definition for one case, from its assessments and its first dose."""
    by_instrument = {}
    for name, d in definitions().items():
        scores = sorted(
            (a for a in assessments if a.instrument == name), key=lambda a: (a.taken_at, a.id or 0)
        )
        latest = scores[-1].score if scores else None
        by_instrument[name] = outcome(d, baseline_of(scores, first_dose), latest)
    measurements = [
        Measurement(
            instrument=a.instrument,
            score=a.score,
            taken_at=a.taken_at,
            week=weeks_between(first_dose, a.taken_at) if first_dose else None,
        )
        for a in sorted(assessments, key=lambda a: (a.taken_at, a.id or 0))
    ]
    return CaseOutcomes(
        **by_instrument,
        weeks_since_first_dose=weeks_between(first_dose, now) if first_dose else None,
        first_dose_at=first_dose,
        sleep_follows_mood=SleepFollowsMood(
            phq9_change=by_instrument["phq9"].change, isi_change=by_instrument["isi"].change
        ),
        measurements=measurements,
    )


def load_case_outcomes(session: Session, case_id: int, now: datetime) -> CaseOutcomes:
    """``case_outcomes`` of a stored case."""
    query = (
        select(Assessment).where(col(Assessment.case_id) == case_id).order_by(col(Assessment.id))
    )
    rows = list(session.execute(query).scalars())
    return case_outcomes(rows, first_dose_at(session, case_id), now)
