"""A read-only, typed view of what is recorded on one case, for the guards.

Every read is a bounded query: the newest reading, the latest score of an
instrument, one aggregate per kind of session, the unresolved adverse
events. A write's cost therefore does not grow with the history already on
the case. Each answer is read once per write and kept until ``forget``.

A read answers with read-only rows (SQLAlchemy Core rows, read by the
model's column names), at less than half the CPU of ORM objects; the reads a
service changes and writes back (the history, the profile, the medication
list, the open clearances, a dispense on its way) answer with ORM objects,
except in a view that only reads (``writable=False``). A row cannot be
changed or added to the session: a service that tried would fail at once,
never write silently.

Tests may build the view without a database: ``preloaded`` maps a read's key
(a property's name, or ``"latest_assessment:phq9"`` for a read with an
argument) to the value the query would return.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import BindParameter, ColumnElement, Result, bindparam, func, literal, union_all
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, exists, select

from models.facts import (
    AdverseEvent,
    Assessment,
    CareSession,
    Consent,
    Dispense,
    DoseClearance,
    EmergencyContact,
    History,
    InteractionScreening,
    Medication,
    MedicationCount,
    MedicationReturn,
    Monitor,
    Profile,
    SafetyPlan,
    Taper,
    Vital,
)
from models.schemas import INSTRUMENT_MAX
from models.settings import Settings, settings
from models.tables import Case
from workflow.definition import Actor

T = TypeVar("T")

ALL_LATEST = "latest_assessment:*"
"""The read key of the newest score of every instrument (``CaseFacts.latest_assessment``)."""

CASE: BindParameter[Any] = bindparam("case_id")
NOW: BindParameter[Any] = bindparam("now")
INSTRUMENT: BindParameter[Any] = bindparam("instrument")
SINCE: BindParameter[Any] = bindparam("since")
VERSION: BindParameter[Any] = bindparam("version")
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


def one_of(column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN (?, ?)`` with a fixed list of values, for a statement built once.

    ``in_`` of a list expands its one parameter at every execution: 70 us a statement
    on the benchmark machine, about what the rest of the statement costs.
    """
    return col(column).in_([literal(value) for value in values])


def _all_of(model: Any, *where: Any) -> Any:
    return select(model).where(model.case_id == CASE, *where).order_by(col(model.id))


# Built once, with bound parameters: building a statement costs more than running it.
HISTORY = select(History).where(History.case_id == CASE)
LATEST_ASSESSMENT = _newest(
    Assessment, Assessment.instrument == INSTRUMENT, col(Assessment.taken_at) <= NOW
)
INSTRUMENTS = tuple(INSTRUMENT_MAX)
"""Every instrument a score is recorded for (PHQ-9, GAD-7, ISI)."""
LATEST_ASSESSMENTS = union_all(
    *(
        select_columns(
            _newest(
                Assessment, Assessment.instrument == name, col(Assessment.taken_at) <= NOW
            ).subquery(name)
        )
        for name in INSTRUMENTS
    )
)
"""The newest score of each instrument in one statement: one index lookup each, as
``LATEST_ASSESSMENT`` makes, with one round trip for all (the guards ask for two or three)."""
LATEST_ASSESSMENT_BEFORE = _newest(
    Assessment, Assessment.instrument == INSTRUMENT, col(Assessment.taken_at) < SINCE
)
PROFILE = select(Profile).where(Profile.case_id == CASE)
CONSENT_OF_VERSION = (
    select(Consent)
    .where(Consent.case_id == CASE, Consent.version == VERSION)
    .order_by(col(Consent.id).desc())
    .limit(1)
)
LATEST_VITAL = _newest(Vital, col(Vital.taken_at) <= NOW)
_GRANTED = (
    DoseClearance.case_id == CASE,
    col(DoseClearance.granted).is_(True),
    col(DoseClearance.created_at) <= NOW,
)
LATEST_GRANTED_CLEARANCE = (
    select(DoseClearance)
    .where(*_GRANTED)
    .order_by(col(DoseClearance.created_at).desc(), col(DoseClearance.id).desc())
    .limit(1)
)
# Every reading that counts for the blood-pressure mean (SPEC.md 3.2): POST vitals and the
# pre-dose readings of granted clearances, from ``since`` to now, each by its own index.
_READINGS = union_all(
    select(col(Vital.systolic), col(Vital.diastolic)).where(
        Vital.case_id == CASE, col(Vital.taken_at) >= SINCE, col(Vital.taken_at) <= NOW
    ),
    select(col(DoseClearance.systolic), col(DoseClearance.diastolic)).where(
        *_GRANTED, col(DoseClearance.created_at) >= SINCE
    ),
).subquery()
BP_MEAN = select(
    func.count(), func.avg(_READINGS.c.systolic), func.avg(_READINGS.c.diastolic)
).select_from(_READINGS)
LATEST_SCREENING = _last(InteractionScreening)
SESSION_STATS = (
    select_columns(  # five columns: more than sqlmodel's ``select`` is typed for
        col(CareSession.kind),
        func.count(),
        func.min(col(CareSession.completed_at)),
        func.max(col(CareSession.completed_at)),
        func.min(col(CareSession.dosed_at)),
    )
    .where(col(CareSession.case_id) == CASE)
    .group_by(col(CareSession.kind))
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
        one_of(Assessment.instrument, ("phq9", "isi")),
        col(Assessment.taken_at) > SINCE,
    )
    .order_by(col(Assessment.taken_at), col(Assessment.id))
)
DOSES_SINCE = select(func.count(), func.max(CareSession.dosed_at)).where(
    CareSession.case_id == CASE,
    CareSession.kind == "dosing",
    col(CareSession.dosed_at) >= SINCE,
)
OPEN_CLEARANCES_SINCE = select(func.count(), func.max(DoseClearance.created_at)).where(
    DoseClearance.case_id == CASE,
    col(DoseClearance.open).is_(True),
    col(DoseClearance.created_at) >= SINCE,
)
SESSION_USING = (
    select(CareSession.id)
    .where(CareSession.case_id == CASE, CareSession.clearance_id == bindparam("clearance_id"))
    .limit(1)
)
OPEN_CLEARANCES = _all_of(DoseClearance, col(DoseClearance.open).is_(True))
EMERGENCY_CONTACT = select(EmergencyContact.id).where(EmergencyContact.case_id == CASE).limit(1)
MONITOR = select(Monitor).where(Monitor.case_id == CASE, Monitor.id == bindparam("monitor_id"))
MEDICATIONS = _all_of(Medication)
TAPERS = _all_of(Taper)
OPEN_ADVERSE_EVENTS = _all_of(AdverseEvent, col(AdverseEvent.resolved_at).is_(None))
LATEST_EVENT_OF_KIND = (
    select(AdverseEvent)
    .where(AdverseEvent.case_id == CASE, AdverseEvent.kind == KIND)
    .order_by(col(AdverseEvent.onset_at).desc(), col(AdverseEvent.id).desc())
    .limit(1)
)
IDEATION = "suicidal_ideation"
OPEN_EVENTS_AND_IDEATION = union_all(
    select_columns(literal("open").label("part"), OPEN_ADVERSE_EVENTS.subquery("open_events")),
    select_columns(literal("latest").label("part"), LATEST_EVENT_OF_KIND.subquery("ideation")),
)
"""The open adverse events and the latest suicidal ideation (``kind``), resolved or not, in one
statement: ``resume`` asks for both, for a hold's two suicide-risk rules; any other state
reads the open events alone."""
HELD = "on_hold"
EVENTS = "open_adverse_events+latest_ideation"
"""The read key of ``OPEN_EVENTS_AND_IDEATION``."""
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


def units_on_hand_of(case_id: Any, at: Any = None) -> Any:
    """The units on hand of a case (SPEC.md 4.5): received - taken - returned, disposed of and
    lost, as one SQL expression of ``case_id`` (a bound parameter, or a column to correlate
    with). Three sums of the records: never a counter that could drift from them.

    With ``at``, what a count taken then should find: dispenses received by then, less
    doses taken by then and every return recorded so far. A return has no time of its own,
    so each one counts, whenever it is entered: a count is never taken for short by a
    return entered after it (nor by the loss an earlier count recorded), and a shortfall
    it misses is found by the next count.
    """
    received = select(func.coalesce(func.sum(Dispense.quantity_units), 0)).where(
        Dispense.case_id == case_id, col(Dispense.received_at).is_not(None)
    )
    taken = select(func.coalesce(func.sum(CareSession.units_taken), 0)).where(
        CareSession.case_id == case_id, CareSession.kind == "dosing"
    )
    left = select(func.coalesce(func.sum(MedicationReturn.units), 0)).where(
        MedicationReturn.case_id == case_id
    )
    if at is not None:
        received = received.where(col(Dispense.received_at) <= at)
        taken = taken.where(col(CareSession.dosed_at) <= at)
    return received.scalar_subquery() - taken.scalar_subquery() - left.scalar_subquery()


UNITS_ON_HAND = select(units_on_hand_of(CASE))
UNITS_ON_HAND_AT = select(units_on_hand_of(CASE, SINCE))
LAST_RECEIPT = select(func.max(Dispense.received_at)).where(Dispense.case_id == CASE)
UNRECEIVED_DISPENSE = (
    select(Dispense)
    .where(Dispense.case_id == CASE, col(Dispense.received_at).is_(None))
    .order_by(col(Dispense.id))
    .limit(1)
)
LAST_COUNT = (
    select(MedicationCount)
    .where(MedicationCount.case_id == CASE)
    .order_by(col(MedicationCount.counted_at).desc(), col(MedicationCount.id).desc())
    .limit(1)
)


def rows(session: Session, statement: Any, values: dict[str, Any]) -> Result[Any]:
    """Run a read of the case as SQLAlchemy Core, on the session's connection and in its
    transaction, after the flush the ORM would have done first (unless it is held back)."""
    if session.autoflush:
        session.flush()
    return session.connection().execute(statement, values)


@dataclass(frozen=True)
class SessionStats:
    """How many sessions of one kind the case has, and when the first and last were completed.

    ``first_dosed`` is the earliest ``dosed_at`` (dosing sessions only).
    """

    count: int
    first: datetime
    last: datetime
    first_dosed: datetime | None = None


@dataclass(frozen=True)
class Window:
    """How many doses (or open clearances) fall in a window of time, and the latest one."""

    count: int
    latest: datetime | None


@dataclass(frozen=True)
class DoseRequest:
    """What a dose clearance asks to be judged on: the pre-dose reading and the monitor."""

    systolic: int
    diastolic: int
    monitor_id: int


@dataclass(frozen=True)
class BloodPressure:
    """A blood pressure: one reading, or the mean of ``readings`` readings."""

    systolic: float
    diastolic: float
    readings: int = 1


@dataclass
class CaseFacts:
    """The case, the acting user, the clock, the thresholds, and bounded reads of its records."""

    case: Case
    now: datetime
    actor: Actor | None = None
    rules: Settings = field(default_factory=lambda: settings)
    session: Session | None = None
    preloaded: dict[str, Any] = field(default_factory=dict)
    dose_request: DoseRequest | None = None
    """While a dose clearance is judged, its reading and monitor (``workflow.dose_guards``)."""
    writable: bool = True
    """False for a view that only reads (``GET transitions``): every read answers with rows,
    those a write would change included."""

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
        """The first row of a read, as a read-only row (``rows``), or None."""
        values = self._params(params)
        return lambda session: rows(session, statement, values).first()

    def _scalar(self, statement: Any, **params: Any) -> Callable[[Session], Any]:
        """The one value of a one-column read, or None."""
        values = self._params(params)
        return lambda session: rows(session, statement, values).scalar()

    def _all(self, statement: Any, **params: Any) -> Callable[[Session], list[Any]]:
        """Every row of a read, as read-only rows (``rows``)."""
        values = self._params(params)
        return lambda session: list(rows(session, statement, values).all())

    def _entity(self, statement: Any, **params: Any) -> Callable[[Session], Any]:
        """The first ORM object of a read a service may change and write back, or None."""
        if not self.writable:
            return self._first(statement, **params)
        values = self._params(params)
        return lambda session: session.exec(statement, params=values).first()

    def _entities(self, statement: Any, **params: Any) -> Callable[[Session], list[Any]]:
        """Every ORM object of a read a service may change and write back."""
        if not self.writable:
            return self._all(statement, **params)
        values = self._params(params)
        return lambda session: list(session.exec(statement, params=values).all())

    # -- one row each ----------------------------------------------------------

    @property
    def history(self) -> History | None:
        """The clinical history, if recorded."""
        return self._read("history", self._entity(HISTORY), None)

    def latest_assessment(self, instrument: str) -> Assessment | None:
        """The newest score of ``instrument`` taken at or before now.

        The first ask reads the newest of every instrument at once
        (``LATEST_ASSESSMENTS``): a guard that asks for one asks for the others.
        """
        key = f"latest_assessment:{instrument}"
        if key not in self.preloaded and instrument in INSTRUMENTS and self.session is not None:
            query = self._all(LATEST_ASSESSMENTS)
            newest = {row.instrument: row for row in self._load(ALL_LATEST, query, self.session)}
            for name in INSTRUMENTS:
                self.preloaded.setdefault(f"latest_assessment:{name}", newest.get(name))
        query = self._first(LATEST_ASSESSMENT, instrument=instrument)
        return self._read(key, query, None)

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
    def latest_granted_clearance(self) -> DoseClearance | None:
        """The newest granted dose clearance (its pre-dose reading), granted at or before now."""
        query = self._first(LATEST_GRANTED_CLEARANCE)
        return self._read("latest_granted_clearance", query, None)

    @property
    def profile(self) -> Profile | None:
        """The patient profile, if recorded."""
        return self._read("profile", self._entity(PROFILE), None)

    @property
    def current_consent(self) -> Consent | None:
        """The newest consent of the current ``consent_version``, if one is on file."""
        query = self._first(CONSENT_OF_VERSION, version=self.rules.consent_version)
        return self._read("current_consent", query, None)

    @property
    def approved(self) -> bool:
        """Whether the case has an ``approve`` transition (SPEC.md section 0).

        ``approve`` sets the case's ``approved_at`` (``workflow.effects.mark_approved``;
        migration 0012 filled it in from the audit trail): no query at all.
        """
        return self.case.approved_at is not None

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
            return {
                kind: SessionStats(n, first, last, dosed)
                for kind, n, first, last, dosed in rows(session)
            }

        return self._read("session_stats", query, {})

    def blood_pressure_mean(self, days: float) -> BloodPressure | None:
        """The mean systolic and diastolic of the readings of the last ``days`` days (POST
        vitals and granted pre-dose readings), None when there is none: one aggregate query."""
        since = self.now - timedelta(days=days)
        row = self._first(BP_MEAN, since=since)

        def query(session: Session) -> BloodPressure | None:
            count, systolic, diastolic = row(session)
            return None if not count else BloodPressure(float(systolic), float(diastolic), count)

        return self._read(f"blood_pressure_mean:{days}", query, None)

    @property
    def dosed_with_granted_clearance(self) -> bool:
        """Whether some dosing session used a clearance that was granted."""
        first = self._first(DOSED_WITH_GRANTED_CLEARANCE)
        return self._read("dosed_with_granted_clearance", lambda s: first(s) is not None, False)

    def doses_since(self, since: datetime) -> Window:
        """Dosing sessions whose ``dosed_at`` is at or after ``since``: a count and the latest."""
        return self._window("doses_since", DOSES_SINCE, since)

    def open_clearances_since(self, since: datetime) -> Window:
        """Open clearances granted at or after ``since``: a count and the latest grant."""
        return self._window("open_clearances_since", OPEN_CLEARANCES_SINCE, since)

    def _window(self, name: str, statement: Any, since: datetime) -> Window:
        row = self._first(statement, since=since)
        return self._read(f"{name}:{since.isoformat()}", lambda s: Window(*row(s)), Window(0, None))

    def clearance_used(self, clearance_id: int) -> bool:
        """Whether a dosing session already used the clearance ``clearance_id``."""
        first = self._first(SESSION_USING, clearance_id=clearance_id)
        return self._read(f"clearance_used:{clearance_id}", lambda s: first(s) is not None, False)

    @property
    def emergency_contact_recorded(self) -> bool:
        """Whether an emergency contact is on file."""
        first = self._first(EMERGENCY_CONTACT)
        return self._read("emergency_contact_recorded", lambda s: first(s) is not None, False)

    def monitor(self, monitor_id: int) -> Monitor | None:
        """The case's treatment monitor ``monitor_id``, if it is one of this case's."""
        query = self._first(MONITOR, monitor_id=monitor_id)
        return self._read(f"monitor:{monitor_id}", query, None)

    def checkin_assessments(self, after: datetime) -> Sequence[Assessment]:
        """PHQ-9 and ISI scores taken after ``after`` (the first dose), oldest first."""
        query = self._all(CHECKIN_ASSESSMENTS, since=after)
        return self._read(f"checkin_assessments:{after.isoformat()}", query, [])

    # -- short lists -------------------------------------------------------------

    @property
    def medications(self) -> list[Medication]:
        """The medication list, in the order it was recorded."""
        return self._read("medications", self._entities(MEDICATIONS), [])

    @property
    def tapers(self) -> list[Taper]:
        """Every taper plan, in the order it was planned."""
        return self._read("tapers", self._all(TAPERS), [])

    @property
    def open_clearances(self) -> list[DoseClearance]:
        """The clearances granted and not yet used, cancelled or void (at most one, by rule).

        A case never approved has none and reads nothing: a clearance is granted only
        with a dose's units on hand (``units.on_hand``), and units follow ``approve``.
        """
        if not self.approved:
            return []
        return self._read("open_clearances", self._entities(OPEN_CLEARANCES), [])

    @property
    def open_adverse_events(self) -> list[AdverseEvent]:
        """The adverse events not yet resolved, oldest first."""
        if self.case.state == HELD:  # resume, the one trigger held from, asks for both
            self._read_events()
        return self._read("open_adverse_events", self._all(OPEN_ADVERSE_EVENTS), [])

    # -- suicide risk and adverse events ------------------------------------------------------

    def latest_event(self, kind: str) -> AdverseEvent | None:
        """The adverse event of ``kind`` with the latest ``onset_at``, resolved or not."""
        if kind == IDEATION:
            self._read_events()
        return self._read(
            f"latest_event:{kind}", self._first(LATEST_EVENT_OF_KIND, kind=kind), None
        )

    def _read_events(self) -> None:
        """The open events and the latest suicidal ideation, both read at the first ask for
        either (``OPEN_EVENTS_AND_IDEATION``)."""
        keys = ("open_adverse_events", f"latest_event:{IDEATION}")
        if self.session is None or all(key in self.preloaded for key in keys):
            return
        query = self._all(OPEN_EVENTS_AND_IDEATION, kind=IDEATION)
        found = self._load(EVENTS, query, self.session)
        open_events = sorted((row for row in found if row.part == "open"), key=lambda e: e.id)
        latest = next((row for row in found if row.part == "latest"), None)
        self.preloaded.setdefault(keys[0], open_events)
        self.preloaded.setdefault(keys[1], latest)

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

    # -- the controlled-substance record ----------------------------------------------------

    @property
    def units_on_hand(self) -> int:
        """Units of ketamine at the patient's home (SPEC.md 4.5): received - taken - returned,
        disposed of and lost, summed from the records in one statement.

        A case never approved has none and reads nothing: every dispense follows
        ``approve`` (``ship`` leaves ``prescribed``; a refill needs a dosing state).
        """
        if not self.approved:
            return 0
        first = self._scalar(UNITS_ON_HAND)
        return self._read("units_on_hand", lambda session: int(first(session) or 0), 0)

    def units_on_hand_at(self, at: datetime) -> int:
        """What a count taken at ``at`` should find (``units_on_hand_of``)."""
        first = self._scalar(UNITS_ON_HAND_AT, since=at)
        return self._read(
            f"units_on_hand_at:{at.isoformat()}", lambda session: int(first(session) or 0), 0
        )

    @property
    def last_receipt(self) -> datetime | None:
        """When the latest dispense was received, if any was."""
        return self._read("last_receipt", self._scalar(LAST_RECEIPT), None)

    @property
    def unreceived_dispense(self) -> Dispense | None:
        """The oldest dispense not yet received, if one is on its way."""
        return self._read("unreceived_dispense", self._entity(UNRECEIVED_DISPENSE), None)

    @property
    def last_count(self) -> MedicationCount | None:
        """The medication count taken last (by ``counted_at``)."""
        return self._read("last_count", self._first(LAST_COUNT), None)
