"""The cohort report and trajectories (SPEC.md section 10), as queries that scale.

The database does the heavy lifting: it finds each case's first dose, its
baseline per instrument and the measurement nearest each asked week, and
returns a histogram of (baseline, score) pairs: a few thousand rows at most,
however many cases there are. The definitions of ``workflow.outcomes`` then
apply to each pair once, so a rule still lives in one place.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Float, and_, case, cast, extract, func, literal, select, true, union_all
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.selectable import CTE, Subquery
from sqlmodel import Session, col

from models.facts import Assessment, CareSession
from workflow.errors import ValidationFailed
from workflow.outcomes import (
    FLAGS,
    INSTRUMENTS,
    Rate,
    definitions,
    dose_time,
    outcome,
    weeks_between,
)

DAY_SECONDS = 86_400.0
WINDOW_DAYS = 7
"""A measurement counts for week w when taken within this many days of w x 7 days."""
UNIX_EPOCH_JULIAN_DAY = 2440587.5


@dataclass(frozen=True)
class Cohort:
    """The cases whose first dose falls in [start, end); an open end is unbounded."""

    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def of_dates(cls, first: date | None, last: date | None) -> Cohort:
        """First doses from ``first`` through ``last`` (UTC days, both included)."""
        if first is not None and last is not None and first > last:
            msg = "`from` must be on or before `to`."
            raise ValidationFailed(
                msg, [{"loc": ["query", "from"], "msg": msg, "type": "value_error"}]
            )
        start = datetime.combine(first, time(), UTC) if first else None
        end = None
        if last is not None and last < date.max:  # nothing comes after the last date there is
            end = datetime.combine(last + timedelta(days=1), time(), UTC)
        return cls(start, end)


def _seconds(dialect: str, column: Any) -> ColumnElement[float]:
    """A timestamp column as seconds since the Unix epoch, on either database."""
    if dialect == "postgresql":
        return cast(extract("epoch", column), Float)
    return (func.julianday(column) - UNIX_EPOCH_JULIAN_DAY) * DAY_SECONDS


def _first_doses(dialect: str, cohort: Cohort) -> CTE:
    first = _seconds(dialect, func.min(dose_time()))
    case_id: Any = col(CareSession.case_id).label("case_id")
    query: Select[Any, Any] = select(case_id, first.label("first_s"))
    query = query.where(col(CareSession.kind) == "dosing").group_by(col(CareSession.case_id))
    if cohort.start is not None:
        query = query.having(first >= cohort.start.timestamp())
    if cohort.end is not None:
        query = query.having(first < cohort.end.timestamp())
    return query.cte("first_doses")


def _ranked(query: Any, rank: ColumnElement[int]) -> Subquery:
    """Only the rows that ``rank`` puts first."""
    ranked = query.add_columns(rank.label("rank")).subquery()
    columns = [c for c in ranked.c if c.name != "rank"]
    return select(*columns).where(ranked.c.rank == 1).subquery()


def _baselines(dialect: str, first: CTE) -> Subquery:
    """Per case and instrument, the latest score taken before the first dose."""
    taken = _seconds(dialect, col(Assessment.taken_at))
    query = (
        select(col(Assessment.case_id), col(Assessment.instrument), col(Assessment.score))
        .join(first, first.c.case_id == col(Assessment.case_id))
        .where(taken < first.c.first_s)
    )
    rank = func.row_number().over(
        partition_by=(col(Assessment.case_id), col(Assessment.instrument)),
        order_by=(taken.desc(), col(Assessment.id).desc()),
    )
    return _ranked(query, rank)


def _nearest(dialect: str, first: CTE, weeks: Iterable[int]) -> Subquery:
    """Per case, instrument and week w, the score nearest w x 7 days after the first dose.

    Within ``WINDOW_DAYS`` either side; the earlier on a tie.
    """
    week_rows = union_all(*(select(literal(w).label("week")) for w in weeks)).cte("weeks")
    taken = _seconds(dialect, col(Assessment.taken_at))
    distance = func.abs(taken - first.c.first_s - week_rows.c.week * 7 * DAY_SECONDS)
    query = (
        select(
            col(Assessment.case_id),
            col(Assessment.instrument),
            week_rows.c.week,
            col(Assessment.score),
        )
        .add_columns(taken.label("taken_s"))
        .join(first, first.c.case_id == col(Assessment.case_id))
        .join(week_rows, distance <= WINDOW_DAYS * DAY_SECONDS)
    )
    rank = func.row_number().over(
        partition_by=(col(Assessment.case_id), col(Assessment.instrument), week_rows.c.week),
        order_by=(distance, taken, col(Assessment.id)),
    )
    return _ranked(query, rank)


def _per_case(session: Session, cohort: Cohort, week: int) -> Any:
    """Per case and instrument: first dose, baseline, the week's score and when it was taken."""
    dialect = session.get_bind().dialect.name
    first = _first_doses(dialect, cohort)
    instruments = union_all(*(select(literal(i).label("instrument")) for i in INSTRUMENTS))
    instrument = instruments.cte("instruments")
    base, near = _baselines(dialect, first), _nearest(dialect, first, [week])

    def on(sub: Subquery) -> ColumnElement[bool]:
        return and_(sub.c.case_id == first.c.case_id, sub.c.instrument == instrument.c.instrument)

    measured = case((near.c.score.is_not(None), 1), else_=0)
    return (
        select(
            first.c.case_id,
            first.c.first_s,
            instrument.c.instrument,
            base.c.score.label("baseline"),
            near.c.score.label("score"),
            near.c.taken_s,
            func.max(measured).over(partition_by=first.c.case_id).label("any_measured"),
        )
        .select_from(first.join(instrument, true()))
        .outerjoin(base, on(base))
        .outerjoin(near, on(near))
    )


# -- the report ----------------------------------------------------------------------


class InstrumentReport(BaseModel):
    measured: int = Field(description="Cases with a measurement in the window.")
    unmeasured: int = Field(description="Cases without one: not in any denominator.")
    improved: Rate
    response: Rate
    remission: Rate


class CohortReport(BaseModel):
    week: int
    window_days: int = Field(description="A measurement counts within this many days of week x 7.")
    count: int = Field(description="Cases whose first dose falls in the range.")
    unmeasured: int = Field(description="Cases with no score of any instrument in the window.")
    phq9: InstrumentReport
    gad7: InstrumentReport
    isi: InstrumentReport


def cohort_report(session: Session, cohort: Cohort, week: int) -> CohortReport:
    """Counts and rates, with their denominators and 95 % Wilson intervals."""
    rows = _per_case(session, cohort, week).subquery()
    keys = (rows.c.instrument, rows.c.baseline, rows.c.score, rows.c.any_measured)
    histogram = session.execute(select(*keys, func.count()).group_by(*keys)).all()
    tallies: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    count = unmeasured = 0
    for instrument, baseline, score, any_measured, n in histogram:
        tally = tallies[instrument]
        tally["measured" if score is not None else "unmeasured"][0] += n
        if instrument == INSTRUMENTS[0]:
            count += n
            unmeasured += 0 if any_measured else n
        judged = outcome(definitions()[instrument], baseline, score)
        for name in FLAGS:
            value = getattr(judged, name)
            if value is not None:
                tally[name][0] += n if value else 0
                tally[name][1] += n
    reports = {i: _instrument_report(tallies[i]) for i in INSTRUMENTS}
    return CohortReport(
        week=week, window_days=WINDOW_DAYS, count=count, unmeasured=unmeasured, **reports
    )


def _instrument_report(tally: dict[str, list[int]]) -> InstrumentReport:
    return InstrumentReport(
        measured=tally["measured"][0],
        unmeasured=tally["unmeasured"][0],
        **{name: Rate.of(*tally[name]) for name in FLAGS},
    )


def _from_seconds(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(round(seconds, 3), UTC)


@cache
def _columns(instrument: str, baseline: int | None, score: int | None) -> dict[str, Any]:
    """Every definition for one pair, as CSV columns; cached, as scores take few values."""
    judged = outcome(definitions()[instrument], baseline, score).model_dump()
    return {f"{instrument}_{'score' if k == 'latest' else k}": v for k, v in judged.items()}


def cohort_rows(session: Session, cohort: Cohort, week: int) -> Iterator[dict[str, Any]]:
    """One row per case: its first dose and, per instrument, every definition at the week."""
    query = _per_case(session, cohort, week).subquery()
    ordered = select(query).order_by(query.c.case_id, query.c.instrument)
    current: dict[str, Any] = {}
    for row in session.execute(ordered.execution_options(yield_per=2000)):
        if current and current["case_id"] != row.case_id:
            yield current
            current = {}
        first = _from_seconds(row.first_s)
        current.setdefault("case_id", row.case_id)
        current.setdefault("first_dose_at", first)
        taken = _from_seconds(row.taken_s)
        current.update(_columns(row.instrument, row.baseline, row.score))
        current[f"{row.instrument}_taken_at"] = taken
        current[f"{row.instrument}_week"] = weeks_between(first, taken) if first and taken else None
    if current:
        yield current


# -- trajectories ---------------------------------------------------------------


class WeekSummary(BaseModel):
    week: int
    n: int = Field(description="Cases measured in the window of this week.")
    median: float
    q1: float
    q3: float


def trajectories(
    session: Session, cohort: Cohort, weeks: range, instruments: tuple[str, ...]
) -> dict[str, list[WeekSummary]]:
    """Per instrument and week, the median and quartiles of the cohort's scores."""
    dialect = session.get_bind().dialect.name
    near = _nearest(dialect, _first_doses(dialect, cohort), weeks)
    keys = (near.c.instrument, near.c.week, near.c.score)
    query = select(*keys, func.count()).where(near.c.instrument.in_(instruments)).group_by(*keys)
    counts: dict[tuple[str, int], dict[int, int]] = defaultdict(dict)
    for instrument, week, score, n in session.execute(query):
        counts[(instrument, week)][score] = n
    return {
        i: [_summary(w, counts[(i, w)]) for w in weeks if counts.get((i, w))] for i in instruments
    }


def _summary(week: int, histogram: dict[int, int]) -> WeekSummary:
    values = sorted(histogram.items())
    return WeekSummary(
        week=week,
        n=sum(histogram.values()),
        median=quantile(values, 0.5),
        q1=quantile(values, 0.25),
        q3=quantile(values, 0.75),
    )


def quantile(histogram: list[tuple[int, int]], q: float) -> float:
    """The ``q`` quantile of sorted (value, count) pairs, interpolated linearly between ranks."""
    n = sum(count for _, count in histogram)
    position = (n - 1) * q
    low, high = int(position), min(int(position) + 1, n - 1)
    return _nth(histogram, low) + (_nth(histogram, high) - _nth(histogram, low)) * (position - low)


def _nth(histogram: list[tuple[int, int]], k: int) -> float:
    for value, count in histogram:
        if k < count:
            return float(value)
        k -= count
    raise IndexError(k)
