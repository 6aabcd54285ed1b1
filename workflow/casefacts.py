"""A read-only, typed view of what is recorded on one case, for the guards.

Every read is a bounded query: the newest reading, the latest score of an
instrument, one aggregate per kind of session, the unresolved adverse
events. A write's cost therefore does not grow with the history already on
the case. Each answer is read once per write and kept until ``forget``.

Tests may build the view without a database: ``preloaded`` maps a read's key
(a property's name, or ``"latest_assessment:phq9"`` for a read with an
argument) to the value the query would return.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.facts import (
    AdverseEvent,
    Assessment,
    CareSession,
    DoseClearance,
    History,
    InteractionScreening,
    Medication,
    Taper,
    Vital,
)
from models.settings import Settings, settings
from models.tables import Case
from workflow.definition import Actor

T = TypeVar("T")


@dataclass(frozen=True)
class SessionStats:
    """How many sessions of one kind the case has, and when the first and last were completed."""

    count: int
    first: datetime
    last: datetime


@dataclass
class CaseFacts:
    """The case, the acting user, the clock, the thresholds, and bounded reads of its records."""

    case: Case
    now: datetime
    actor: Actor | None = None
    rules: Settings = field(default_factory=lambda: settings)
    session: Session | None = None
    preloaded: dict[str, Any] = field(default_factory=dict)

    # -- plumbing ------------------------------------------------------------

    def _read(self, key: str, query: Callable[[Session], T], empty: T) -> T:
        if key in self.preloaded:
            return self.preloaded[key]
        value = empty if self.session is None else self._load(key, query, self.session)
        self.preloaded[key] = value
        return value

    def _load(self, key: str, query: Callable[[Session], T], session: Session) -> T:
        """Run one bounded query (tests spy on this to see what a write reads)."""
        return query(session)

    def forget(self) -> None:
        """Drop every answer read so far, so the next read sees this transaction's writes."""
        self.preloaded.clear()

    def _first(self, statement: Any) -> Callable[[Session], Any]:
        return lambda session: session.exec(statement).first()

    def _all(self, statement: Any) -> Callable[[Session], list[Any]]:
        return lambda session: list(session.exec(statement).all())

    # -- one row each ----------------------------------------------------------

    @property
    def history(self) -> History | None:
        """The clinical history, if recorded."""
        query = select(History).where(History.case_id == self.case.id)
        return self._read("history", self._first(query), None)

    def latest_assessment(self, instrument: str) -> Assessment | None:
        """The newest score of ``instrument`` taken at or before now."""
        query = (
            select(Assessment)
            .where(
                Assessment.case_id == self.case.id,
                Assessment.instrument == instrument,
                col(Assessment.taken_at) <= self.now,
            )
            .order_by(col(Assessment.taken_at).desc(), col(Assessment.id).desc())
            .limit(1)
        )
        return self._read(f"latest_assessment:{instrument}", self._first(query), None)

    @property
    def latest_vital(self) -> Vital | None:
        """The newest blood-pressure reading recorded with ``POST vitals``, at or before now."""
        query = (
            select(Vital)
            .where(Vital.case_id == self.case.id, col(Vital.taken_at) <= self.now)
            .order_by(col(Vital.taken_at).desc(), col(Vital.id).desc())
            .limit(1)
        )
        return self._read("latest_vital", self._first(query), None)

    @property
    def latest_clearance(self) -> DoseClearance | None:
        """The newest dose clearance, granted or not."""
        query = (
            select(DoseClearance)
            .where(DoseClearance.case_id == self.case.id)
            .order_by(col(DoseClearance.id).desc())
            .limit(1)
        )
        return self._read("latest_clearance", self._first(query), None)

    @property
    def latest_screening(self) -> InteractionScreening | None:
        """The newest interaction screening."""
        query = (
            select(InteractionScreening)
            .where(InteractionScreening.case_id == self.case.id)
            .order_by(col(InteractionScreening.id).desc())
            .limit(1)
        )
        return self._read("latest_screening", self._first(query), None)

    # -- aggregates --------------------------------------------------------------

    @property
    def session_stats(self) -> dict[str, SessionStats]:
        """Per kind of session: how many, the first and the last ``completed_at``."""

        def query(session: Session) -> dict[str, SessionStats]:
            rows = session.exec(
                select(
                    CareSession.kind,
                    func.count(),
                    func.min(CareSession.completed_at),
                    func.max(CareSession.completed_at),
                )
                .where(CareSession.case_id == self.case.id)
                .group_by(CareSession.kind)
            ).all()
            return {kind: SessionStats(n, first, last) for kind, n, first, last in rows}

        return self._read("session_stats", query, {})

    @property
    def dosed_with_granted_clearance(self) -> bool:
        """Whether some dosing session used a clearance that was granted."""
        query = (
            select(CareSession.id)
            .join(DoseClearance, col(DoseClearance.id) == col(CareSession.clearance_id))
            .where(
                CareSession.case_id == self.case.id,
                CareSession.kind == "dosing",
                col(DoseClearance.granted).is_(True),
            )
            .limit(1)
        )
        return self._read(
            "dosed_with_granted_clearance", lambda s: s.exec(query).first() is not None, False
        )

    def checkin_assessments(self, after: datetime) -> Sequence[Assessment]:
        """PHQ-9 and ISI scores taken after ``after`` (the first dose), oldest first."""
        query = (
            select(Assessment)
            .where(
                Assessment.case_id == self.case.id,
                col(Assessment.instrument).in_(("phq9", "isi")),
                col(Assessment.taken_at) > after,
            )
            .order_by(col(Assessment.taken_at), col(Assessment.id))
        )
        return self._read(f"checkin_assessments:{after.isoformat()}", self._all(query), [])

    def latest_assessment_before(self, instrument: str, before: datetime) -> Assessment | None:
        """The newest score of ``instrument`` taken at or before ``before``."""
        query = (
            select(Assessment)
            .where(
                Assessment.case_id == self.case.id,
                Assessment.instrument == instrument,
                col(Assessment.taken_at) <= before,
            )
            .order_by(col(Assessment.taken_at).desc(), col(Assessment.id).desc())
            .limit(1)
        )
        key = f"latest_assessment_before:{instrument}:{before.isoformat()}"
        return self._read(key, self._first(query), None)

    # -- short lists -------------------------------------------------------------

    @property
    def medications(self) -> list[Medication]:
        """The medication list, in the order it was recorded."""
        query = (
            select(Medication)
            .where(Medication.case_id == self.case.id)
            .order_by(col(Medication.id))
        )
        return self._read("medications", self._all(query), [])

    @property
    def tapers(self) -> list[Taper]:
        """Every taper plan, in the order it was planned."""
        query = select(Taper).where(Taper.case_id == self.case.id).order_by(col(Taper.id))
        return self._read("tapers", self._all(query), [])

    @property
    def open_adverse_events(self) -> list[AdverseEvent]:
        """The adverse events not yet resolved."""
        query = (
            select(AdverseEvent)
            .where(AdverseEvent.case_id == self.case.id, col(AdverseEvent.resolved_at).is_(None))
            .order_by(col(AdverseEvent.id))
        )
        return self._read("open_adverse_events", self._all(query), [])
