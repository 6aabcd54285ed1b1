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

from sqlalchemy import BindParameter, bindparam, func
from sqlmodel import Session, col, exists, select

from models.facts import (
    AdverseEvent,
    Assessment,
    CareSession,
    DoseClearance,
    History,
    InteractionScreening,
    Medication,
    SafetyPlan,
    Taper,
    Vital,
)
from models.settings import Settings, settings
from models.tables import AuditEvent, Case
from workflow.definition import Actor

T = TypeVar("T")

CASE: BindParameter[Any] = bindparam("case_id")
NOW: BindParameter[Any] = bindparam("now")
INSTRUMENT: BindParameter[Any] = bindparam("instrument")
SINCE: BindParameter[Any] = bindparam("since")
KIND: BindParameter[Any] = bindparam("kind")
SCORE: BindParameter[Any] = bindparam("score")
ASSESSMENT: BindParameter[Any] = bindparam("assessment_id")


def _newest(model: Any, *where: Any) -> Any:
    return (
        select(model)
        .where(model.case_id == CASE, *where)
        .order_by(col(model.taken_at).desc(), col(model.id).desc())
        .limit(1)
    )


def _last(model: Any) -> Any:
    return select(model).where(model.case_id == CASE).order_by(col(model.id).desc()).limit(1)


def _all_of(model: Any, *where: Any) -> Any:
    return select(model).where(model.case_id == CASE, *where).order_by(col(model.id))


# Built once, with bound parameters: building a statement costs more than running it.
HISTORY = select(History).where(History.case_id == CASE)
LATEST_ASSESSMENT = _newest(
    Assessment, Assessment.instrument == INSTRUMENT, col(Assessment.taken_at) <= NOW
)
LATEST_ASSESSMENT_BEFORE = _newest(
    Assessment, Assessment.instrument == INSTRUMENT, col(Assessment.taken_at) < SINCE
)
LATEST_VITAL = _newest(Vital, col(Vital.taken_at) <= NOW)
LATEST_CLEARANCE = _last(DoseClearance)
LATEST_SCREENING = _last(InteractionScreening)
SESSION_STATS = (
    select(
        CareSession.kind,
        func.count(),
        func.min(CareSession.completed_at),
        func.max(CareSession.completed_at),
    )
    .where(CareSession.case_id == CASE)
    .group_by(CareSession.kind)
)
DOSED_WITH_GRANTED_CLEARANCE = (
    select(CareSession.id)
    .join(DoseClearance, col(DoseClearance.id) == col(CareSession.clearance_id))
    .where(
        CareSession.case_id == CASE,
        CareSession.kind == "dosing",
        col(DoseClearance.granted).is_(True),
    )
    .limit(1)
)
CHECKIN_ASSESSMENTS = (
    select(Assessment)
    .where(
        Assessment.case_id == CASE,
        col(Assessment.instrument).in_(("phq9", "isi")),
        col(Assessment.taken_at) > SINCE,
    )
    .order_by(col(Assessment.taken_at), col(Assessment.id))
)
MEDICATIONS = _all_of(Medication)
TAPERS = _all_of(Taper)
OPEN_ADVERSE_EVENTS = _all_of(AdverseEvent, col(AdverseEvent.resolved_at).is_(None))
LATEST_EVENT_OF_KIND = (
    select(AdverseEvent)
    .where(AdverseEvent.case_id == CASE, AdverseEvent.kind == KIND)
    .order_by(col(AdverseEvent.onset_at).desc(), col(AdverseEvent.id).desc())
    .limit(1)
)
EVENT_OF_ASSESSMENT = select(AdverseEvent.id).where(
    AdverseEvent.assessment_id == ASSESSMENT, AdverseEvent.kind == KIND
)
UNFLAGGED_SCORES = (
    select(Assessment)
    .where(
        Assessment.case_id == CASE,
        Assessment.instrument == INSTRUMENT,
        col(Assessment.taken_at) > SINCE,
        col(Assessment.score) >= SCORE,
        ~exists().where(
            col(AdverseEvent.assessment_id) == col(Assessment.id), col(AdverseEvent.kind) == KIND
        ),
    )
    .order_by(col(Assessment.taken_at), col(Assessment.id))
)
"""Scores at or above a threshold, taken after a time, that no event of a kind names yet:
once each is flagged, it is never read again, so a write reads only what is new."""
LATEST_SAFETY_PLAN = (
    select(SafetyPlan)
    .where(SafetyPlan.case_id == CASE)
    .order_by(col(SafetyPlan.reviewed_with_patient_at).desc(), col(SafetyPlan.id).desc())
    .limit(1)
)
APPROVED = (
    select(AuditEvent.id)
    .where(
        AuditEvent.case_id == CASE,
        AuditEvent.kind == "transition",
        AuditEvent.trigger == "approve",
    )
    .limit(1)
)


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

    def _params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"case_id": self.case.id, "now": self.now, **params}

    def _first(self, statement: Any, **params: Any) -> Callable[[Session], Any]:
        values = self._params(params)
        return lambda session: session.exec(statement, params=values).first()

    def _all(self, statement: Any, **params: Any) -> Callable[[Session], list[Any]]:
        values = self._params(params)
        return lambda session: list(session.exec(statement, params=values).all())

    # -- one row each ----------------------------------------------------------

    @property
    def history(self) -> History | None:
        """The clinical history, if recorded."""
        return self._read("history", self._first(HISTORY), None)

    def latest_assessment(self, instrument: str) -> Assessment | None:
        """The newest score of ``instrument`` taken at or before now."""
        query = self._first(LATEST_ASSESSMENT, instrument=instrument)
        return self._read(f"latest_assessment:{instrument}", query, None)

    def latest_assessment_before(self, instrument: str, before: datetime) -> Assessment | None:
        """The newest score of ``instrument`` taken before ``before``."""
        query = self._first(LATEST_ASSESSMENT_BEFORE, instrument=instrument, since=before)
        return self._read(
            f"latest_assessment_before:{instrument}:{before.isoformat()}", query, None
        )

    @property
    def latest_vital(self) -> Vital | None:
        """The newest blood-pressure reading recorded with ``POST vitals``, at or before now."""
        return self._read("latest_vital", self._first(LATEST_VITAL), None)

    @property
    def latest_clearance(self) -> DoseClearance | None:
        """The newest dose clearance, granted or not."""
        return self._read("latest_clearance", self._first(LATEST_CLEARANCE), None)

    @property
    def latest_screening(self) -> InteractionScreening | None:
        """The newest interaction screening."""
        return self._read("latest_screening", self._first(LATEST_SCREENING), None)

    # -- aggregates --------------------------------------------------------------

    @property
    def session_stats(self) -> dict[str, SessionStats]:
        """Per kind of session: how many, the first and the last ``completed_at``."""
        rows = self._all(SESSION_STATS)

        def query(session: Session) -> dict[str, SessionStats]:
            return {kind: SessionStats(n, first, last) for kind, n, first, last in rows(session)}

        return self._read("session_stats", query, {})

    @property
    def dosed_with_granted_clearance(self) -> bool:
        """Whether some dosing session used a clearance that was granted."""
        first = self._first(DOSED_WITH_GRANTED_CLEARANCE)
        return self._read("dosed_with_granted_clearance", lambda s: first(s) is not None, False)

    def checkin_assessments(self, after: datetime) -> Sequence[Assessment]:
        """PHQ-9 and ISI scores taken after ``after`` (the first dose), oldest first."""
        query = self._all(CHECKIN_ASSESSMENTS, since=after)
        return self._read(f"checkin_assessments:{after.isoformat()}", query, [])

    # -- short lists -------------------------------------------------------------

    @property
    def medications(self) -> list[Medication]:
        """The medication list, in the order it was recorded."""
        return self._read("medications", self._all(MEDICATIONS), [])

    @property
    def tapers(self) -> list[Taper]:
        """Every taper plan, in the order it was planned."""
        return self._read("tapers", self._all(TAPERS), [])

    @property
    def open_adverse_events(self) -> list[AdverseEvent]:
        """The adverse events not yet resolved."""
        return self._read("open_adverse_events", self._all(OPEN_ADVERSE_EVENTS), [])

    # -- suicide risk and adverse events ------------------------------------------------------

    def latest_event(self, kind: str) -> AdverseEvent | None:
        """The adverse event of ``kind`` with the latest ``onset_at``, resolved or not."""
        return self._read(
            f"latest_event:{kind}", self._first(LATEST_EVENT_OF_KIND, kind=kind), None
        )

    def has_event_for(self, assessment_id: int, kind: str) -> bool:
        """Whether an adverse event of ``kind`` already names this assessment."""
        first = self._first(EVENT_OF_ASSESSMENT, assessment_id=assessment_id, kind=kind)
        key = f"has_event_for:{assessment_id}:{kind}"
        return self._read(key, lambda s: first(s) is not None, False)

    def unflagged_scores(
        self, instrument: str, *, after: datetime, at_least: int, kind: str
    ) -> Sequence[Assessment]:
        """Scores of ``instrument`` taken after ``after``, at least ``at_least``, that no
        event of ``kind`` names yet, oldest first."""
        query = self._all(
            UNFLAGGED_SCORES, instrument=instrument, since=after, score=at_least, kind=kind
        )
        key = f"unflagged:{instrument}:{after.isoformat()}:{at_least}:{kind}"
        return self._read(key, query, [])

    @property
    def latest_safety_plan(self) -> SafetyPlan | None:
        """The safety plan reviewed with the patient last."""
        return self._read("latest_safety_plan", self._first(LATEST_SAFETY_PLAN), None)

    @property
    def approved(self) -> bool:
        """Whether the case has been approved (it has an ``approve`` transition event)."""
        first = self._first(APPROVED)
        return self._read("approved", lambda s: first(s) is not None, False)

    @property
    def units_on_hand(self) -> int:
        """Units of ketamine at the patient's home (SPEC.md 4.5).

        Always 0 until the controlled-substance record (dispenses, receipts, doses
        taken, returns) exists: that issue fills this accessor, and
        ``safety.reassessed`` then asks for secured means whenever it is above 0.
        """
        return self._read("units_on_hand", lambda session: 0, 0)
