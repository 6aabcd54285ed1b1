"""Random sequences of facts and triggers through the real services, checked after every step.

A Hypothesis ``RuleBasedStateMachine`` records facts and fires triggers on a
few cases, as random staff, while a random clock moves on. After every step
the whole audit trail is replayed by an independent model of the rules
(``Replay``) and compared with the database:

- no case is prescribed (or gets past prescribing) without a current,
  non-blocked interaction screening and every benzodiazepine or Z-drug taper
  confirmed at the moment of the ``prescribe`` event;
- a history or profile change on an approved case that newly fails a
  contraindication is followed by a severe adverse event naming it, and one
  that does not is followed by none;
- every dosing session used a granted clearance valid at its ``completed_at``,
  and no clearance twice;
- a case's state is the ``to_state`` of its last transition event, and its
  version counts its events;
- earlier events never change;
- a refused call (any ``DomainError``) changes nothing, and an accepted one
  appends one event by its actor plus only ``system`` events;
- the service records exactly the adverse events SPEC.md 4.6 asks for (suicidal
  ideation from item 9, worsening against the baselines, late entries included,
  hypnotics and interacting medications), and every event that holds holds;
- no case with unresolved suicidal ideation is withdrawn, resumed or cleared for
  a dose, none resumes without a low-risk safety plan after the ideation, and
  every unresolved suicidal ideation has a ``safety_review`` open or acknowledged.

Each example gets a fresh database: a new SQLite file, or the PostgreSQL test
database emptied, when ``CAREPATH_TEST_DATABASE_URL`` is set. The size is set
by ``CAREPATH_STATEFUL_EXAMPLES`` and ``CAREPATH_STATEFUL_STEPS``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import event, text
from sqlalchemy import select as rows_of
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, select

from models.db import create_schema, make_engine, session_scope
from models.facts import (
    AdverseEvent,
    DoseClearance,
    Medication,
    Taper,
)
from models.schemas import (
    AdverseEventCreate,
    AdverseEventKind,
    AdverseEventResolve,
    AssessmentCreate,
    CaseCreate,
    ClearanceCreate,
    ConsentCreate,
    HistoryIn,
    Instrument,
    MedicationCreate,
    MedicationUpdate,
    ProfileIn,
    RiskLevel,
    SafetyPlanCreate,
    ScreeningCreate,
    SessionCreate,
    SessionKind,
    Severity,
    TaperConfirm,
    TaperCreate,
    TransitionBody,
    VitalCreate,
)
from models.tables import Case
from schedules import policies
from tests.conftest import add_user, empty_tables
from tests.workflow.conftest import (
    ELIGIBLE_HISTORY,
    ELIGIBLE_PROFILE,
    WASHOUT_WAIT_DAYS,
    MedicationStatus,
    body_for,
)
from workflow import cases, dosing, drugs, medications, patient, records
from workflow.casefacts import CaseFacts
from workflow.definition import (
    ACTIVE_STATES,
    TRIGGER_BY_NAME,
    TRIGGERS,
    Actor,
    destination,
    may_fire,
    phase_of,
    triggers_from,
)
from workflow.errors import (
    DomainError,
    Forbidden,
    InvalidTransition,
    TransitionBlocked,
    ValidationFailed,
)
from workflow.guards import GUARDS, evaluate

EXAMPLES = int(os.environ.get("CAREPATH_STATEFUL_EXAMPLES", "75"))
STEPS = int(os.environ.get("CAREPATH_STATEFUL_STEPS", "40"))
START = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)

TAPER_CLASSES = {"benzodiazepine", "z_drug"}
PRESCRIBED_OR_LATER = {
    "delivery.prescribed",
    "delivery.shipped",
    "integration",
    "monitoring",
    "discharged",
}
DOSING_STATES = {"integration", "monitoring"}
ALWAYS_HOLD = {"respiratory_depression", "suicidal_ideation"}
HOLD_FROM_MODERATE = {"substance_misuse", "psychiatric_event"}
# SPEC.md 2: decline and discharge leave on_hold only for a case held from these.
LEAVES_HOLD = {"decline": {"evaluation"}, "discharge": {"integration", "monitoring"}}
MED_NAMES = [
    "Xanax",
    "Ambien",
    "lorazepam 1 mg",
    "sertraline",
    "oxycodone",
    "phenelzine",
    "lamotrigine",
    "Frobnitol",
    "Quuxamine XR",
]
INSTRUMENT_MAX = {"phq9": 27, "gad7": 21, "isi": 28}
EVENT_KINDS = [
    "nausea",
    "dizziness",
    "dissociation",
    "worsened_insomnia",
    "worsened_depression",
    "respiratory_depression",
    "suicidal_ideation",
    "suicidal_ideation",
    "substance_misuse",
    "psychiatric_event",
    "other",
]

booleans = st.booleans()
histories = st.one_of(
    st.just(HistoryIn(**ELIGIBLE_HISTORY)),
    st.builds(
        HistoryIn,
        insomnia_nights_per_week=st.integers(0, 7),
        insomnia_duration_months=st.integers(0, 24),
        diagnoses=st.lists(st.sampled_from(["depression", "anxiety", "ptsd", "other"]), max_size=2),
        failed_antidepressant_trials=st.integers(0, 4),
        cbti_completed=booleans,
        seeking_sleep_med_replacement=booleans,
        substance_use_disorder_history=booleans,
        uncontrolled_hypertension=booleans,
        active_psychosis=booleans,
        severe_psychiatric_instability=booleans,
        significant_breathing_problems=booleans,
        sleep_apnea=booleans,
        insomnia_mood_driven=st.sampled_from([None, True, False]),
        psychosis_or_mania_history=booleans,
        aneurysm_avm_or_ich=booleans,
        recent_mi_or_stroke=booleans,
    ),
)
rarely = st.sampled_from([False, False, False, True])
profiles = st.one_of(
    st.just(ProfileIn(**ELIGIBLE_PROFILE)),
    st.builds(
        ProfileIn,
        date_of_birth=st.sampled_from(
            [date(1960, 1, 31), date(2008, 11, 3), date(2008, 11, 20), date(2030, 1, 1)]
        ),
        pregnant=rarely,
        breastfeeding=rarely,
    ),
)
actors = st.sampled_from(["clinician", "tx_clinician", "coordinator", "admin"])
picks = st.integers(0, 9)  # which case or record, modulo how many there are
# Minutes before now; a negative age is a timestamp in the future.
ages = st.one_of(st.integers(0, 60), st.integers(-180, 60 * 24 * 40))

# What ``catch_up`` does for each unmet requirement, and in which order.
HISTORY = ("history",)
PROFILE = ("profile",)
CATCH_UP: dict[str, tuple[str, ...]] = {
    "history.recorded": HISTORY,
    "profile.recorded": PROFILE,
    "consent.signed": ("consent",),
    "criteria.adult": PROFILE,
    "contraindication.pregnancy": PROFILE,
    "contraindication.cardiovascular": HISTORY,
    "assessments.baseline": ("baseline",),
    "assessments.recent": ("recent",),
    "vitals.baseline": ("vital",),
    "vitals.recent": ("vital",),
    "criteria.chronic_insomnia": HISTORY,
    "criteria.mood_disorder": ("history", "baseline"),
    "criteria.treatment_resistant": HISTORY,
    "criteria.cbti_trial": HISTORY,
    "criteria.not_sleep_med_replacement": HISTORY,
    "contraindication.substance_use": HISTORY,
    "contraindication.hypertension": ("history", "vital"),
    "contraindication.psychosis": HISTORY,
    "contraindication.respiratory": HISTORY,
    "medications.classified": ("classify",),
    "screening.interactions": ("screen",),
    "taper.planned": ("tapers",),
    "taper.confirmed": ("tapers", "screen"),
    # A washout is waited out: the readings and scores are then taken again.
    "taper.washout": ("tapers", "washout", "vital", "recent"),
    "clinician.licensed": (),
    "session.preparation": ("dose",),
    "session.dosing": ("dose",),
    "session.integration": ("dose",),
    "adverse_events.resolved": ("resolve",),
    "adverse_events.suicide_risk_resolved": ("resolve",),
    "safety.reassessed": ("safety_plan",),
}
CATCH_UP_ORDER = (
    "history",
    "profile",
    "consent",
    "classify",
    "tapers",
    "washout",
    "vital",
    "baseline",
    "recent",
    "screen",
    "dose",
    "resolve",
    "safety_plan",
)
OFF_PATHWAY = {"decline", "hold", "withdraw"}
BLOCKING_CLASSES = drugs.blocking_classes()

# Core tables: reading rows without building ORM objects keeps each step cheap.
CASES = SQLModel.metadata.tables["cases"]
EVENTS = SQLModel.metadata.tables["audit_events"]
SESSIONS = SQLModel.metadata.tables["care_sessions"]
CLEARANCES = SQLModel.metadata.tables["dose_clearances"]
ADVERSE = SQLModel.metadata.tables["adverse_events"]
REMINDERS = SQLModel.metadata.tables["reminders"]

# Every table's row count, and the newest event's id, in one statement.
COUNT_ROWS = "SELECT " + ", ".join(
    [f'(SELECT count(*) FROM "{t.name}")' for t in SQLModel.metadata.sorted_tables]
    + ["(SELECT coalesce(max(id), 0) FROM audit_events)"]
)


# -- a fresh database per example -------------------------------------------------------


@dataclass
class ExampleDatabases:
    """Hands each example an empty database: a new SQLite file, or PostgreSQL emptied."""

    tmp_path: Path
    postgres: Engine | None
    made: count = field(default_factory=count)

    def fresh(self) -> Engine:
        if self.postgres is not None:
            empty_tables(self.postgres.url.render_as_string(hide_password=False))
            return self.postgres
        engine = make_engine(f"sqlite:///{self.tmp_path / f'example-{next(self.made)}.db'}")
        # Registered after the engine's own listener, so it wins: a throwaway file need
        # not survive power loss, and waiting on the disk at each commit would make
        # thousands of steps take minutes. Locking and transactions are unchanged.
        event.listen(engine, "connect", _no_disk_sync)
        create_schema(engine)
        return engine

    def done(self, engine: Engine) -> None:
        if engine is not self.postgres:
            engine.dispose()


def _no_disk_sync(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=OFF")


# -- the independent model: a replay of one case's audit trail -----------------------------


def listed(record: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """What of a medication record, besides its status, changes the list."""
    return record.get("stopped_on"), tuple(record.get("drug_classes") or ())


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


# The contraindications a history or profile shows by its flags alone (hypertension also
# reads the blood pressure, which this model does not follow).
FLAGGED = {
    "contraindication.substance_use": ("substance_use_disorder_history",),
    "contraindication.psychosis": (
        "active_psychosis",
        "psychosis_or_mania_history",
        "severe_psychiatric_instability",
    ),
    "contraindication.respiratory": ("significant_breathing_problems", "sleep_apnea"),
    "contraindication.cardiovascular": ("aneurysm_avm_or_ich", "recent_mi_or_stroke"),
    "contraindication.pregnancy": ("pregnant", "breastfeeding"),
}
NEW_CONTRAINDICATION = "new contraindication: "


def flagged(record: dict[str, Any]) -> set[str]:
    """The contraindications ``record`` (a history and a profile, merged) flags."""
    return {code for code, flags in FLAGGED.items() if any(record.get(f) for f in flags)}


@dataclass
class Replay:
    """Walks a case's audit trail in order and checks each event against the rules."""

    patient_state: str
    licenses: dict[int | None, tuple[str, ...]]  # actor id -> the states it is licensed in
    state: str | None = None
    held_from: str | None = None
    meds: dict[int, list[str]] = field(default_factory=dict)  # id -> [class, status]
    list_changes: int = 0
    last_change: int = -1
    screening: tuple[int, int, str] | None = None  # (index, list version, result)
    planned: set[int] = field(default_factory=set)
    confirmed: set[int] = field(default_factory=set)
    open_events: set[int] = field(default_factory=set)
    clearances: dict[int, dict[str, Any]] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)
    sessions: list[tuple[str, datetime]] = field(default_factory=list)
    # (taken_at, id, instrument, score) of every assessment; (assessment id, kind) flagged
    scores: list[tuple[datetime, int, str, int]] = field(default_factory=list)
    flagged: set[tuple[int, str]] = field(default_factory=set)
    open_si: dict[int, datetime] = field(default_factory=dict)  # id -> onset_at
    latest_si: datetime | None = None
    plans: list[tuple[datetime, int, str]] = field(default_factory=list)  # (reviewed, id, risk)
    approved: bool = False
    activated: dict[str, Any] | None = None  # the medication the last write made active
    prescribed: bool = False
    patient: dict[str, Any] = field(default_factory=dict)  # the history and profile, merged
    contraindications_recorded: int = 0

    def screening_ok(self) -> bool:
        return (
            self.screening is not None
            and self.screening[0] > self.last_change
            and self.screening[2] != "blocked"
        )

    def tapers_confirmed(self) -> bool:
        return all(
            mid in self.confirmed and status == "stopped"
            for mid, (cls, status, _) in self.meds.items()
            if cls in TAPER_CLASSES
        )

    def run(self, events: list[Any], start: int = 0) -> None:
        """Check ``events[start:]``, the ones not replayed yet, against the rules."""
        for i in range(start, len(events)):
            e = events[i]
            where = f"event {i} ({e.kind} {e.trigger or e.data.get('fact')})"
            if e.kind == "transition":
                self.transition(e, where)
            else:
                self.fact(i, e, where)
                if e.data["fact"] in ("history", "profile"):
                    self.new_contraindications(e, events[i + 1 :], where)
            following = []
            for later in events[i + 1 :]:
                if later.actor_role != "system":
                    break
                following.append(later)
            self.follow_up(e, following, where)

    def transition(self, e: Any, where: str) -> None:
        if e.trigger == "create":
            assert (self.state, e.from_state, e.to_state) == (None, None, "evaluation"), where
            self.state = "evaluation"
            return
        assert e.from_state == self.state, where
        trigger = TRIGGER_BY_NAME[e.trigger]
        assert self.state in trigger.sources, where
        if self.state == "on_hold" and e.trigger in LEAVES_HOLD:
            assert self.held_from in LEAVES_HOLD[e.trigger], f"{where}: from {self.held_from}"
        assert e.to_state == destination(trigger, self.state, self.held_from), where
        if e.trigger in ("withdraw", "resume"):
            assert not self.open_si, f"{where}: with suicidal ideation unresolved"
        if e.trigger == "resume" and self.latest_si is not None:
            plan = max(self.plans, default=None)
            assert plan is not None and plan[0] > self.latest_si, f"{where}: no plan since the SI"
            assert plan[2] == "low", f"{where}: the latest plan rates the risk {plan[2]}"
        self.approved = self.approved or e.trigger == "approve"
        if e.trigger in ("prescribe", "adjust_dose"):
            licensed = self.patient_state in self.licenses.get(e.actor_id, ())
            assert licensed, f"{where}: by a clinician not licensed in {self.patient_state}"
        if e.trigger == "prescribe":
            # The safety property this whole test exists for.
            assert self.screening_ok(), f"{where}: prescribed without a current, clear screening"
            assert self.tapers_confirmed(), f"{where}: prescribed with a taper unconfirmed"
            self.prescribed = True
        if e.trigger == "approve":
            self.approved = True
            assert self.screening_ok(), f"{where}: approved without a current screening"
            active = {
                m for m, (c, s, _) in self.meds.items() if c in TAPER_CLASSES and s == "active"
            }
            assert active <= self.planned, f"{where}: approved with a taper unplanned"
        if e.trigger in ("discharge", "resume"):
            assert not self.open_events, f"{where}: with adverse events open"
        if e.trigger == "start_monitoring":
            self.check_sessions_for_monitoring(where)
        self.held_from = self.state if e.to_state == "on_hold" else None
        self.state = e.to_state

    def check_sessions_for_monitoring(self, where: str) -> None:
        kinds = {kind for kind, _ in self.sessions}
        assert {"preparation", "dosing"} <= kinds, where
        first_dose = min(at for kind, at in self.sessions if kind == "dosing")
        assert any(k == "integration" and at > first_dose for k, at in self.sessions), where

    def fact(self, i: int, e: Any, where: str) -> None:
        fact, record = e.data["fact"], e.data["record"]
        self.activated = None
        if fact == "medication":
            self.meds[record["id"]] = [record["drug_class"], record["status"], listed(record)]
            self.changed(i)
            self.activated = record if record["status"] == "active" else None
        elif fact == "medication_update":
            medication = self.meds[record["id"]]
            if medication[1] != "active" and record["status"] == "active":
                self.activated = record
            if medication[1] != record["status"] and record["status"] == "active":
                # Made active again: its earlier taper no longer counts (SPEC.md 4.3).
                self.planned.discard(record["id"])
                self.confirmed.discard(record["id"])
            if medication[1:] != [record["status"], listed(record)]:
                medication[1:] = [record["status"], listed(record)]
                self.changed(i)
        elif fact == "interaction_screening":
            assert record["medication_list_version"] == self.list_changes, where
            self.screening = (i, record["medication_list_version"], record["result"])
        elif fact == "taper":
            self.planned.add(record["medication_id"])
        elif fact == "taper_confirm":
            self.confirmed.add(record["medication_id"])
            medication = self.meds[record["medication_id"]]
            stopped_on, classes = medication[2]
            last = record["last_dose_on"]
            # stopped_on becomes the last dose unless an earlier one is recorded.
            kept = stopped_on if stopped_on is not None and stopped_on <= last else last
            # Only stopping an active medication changes the list; the date follows along.
            if medication[1] != "stopped":
                self.changed(i)
            medication[1:] = ["stopped", (kept, classes)]
        elif fact == "dose_clearance":
            self.clearance(record, where)
        elif fact == "session":
            self.session(record, where)
        elif fact == "adverse_event":
            self.adverse_event(record)
        elif fact == "adverse_event_resolve":
            assert record["id"] in self.open_events, where
            self.open_events.discard(record["id"])
            self.open_si.pop(record["id"], None)
        elif fact == "assessment":
            self.scores.append(
                (_at(record["taken_at"]), record["id"], record["instrument"], record["score"])
            )
        elif fact == "safety_plan":
            at = _at(record["reviewed_with_patient_at"])
            self.plans.append((at, record["id"], record["risk_level"]))

    def adverse_event(self, record: dict[str, Any]) -> None:
        self.open_events.add(record["id"])
        if record["assessment_id"] is not None:
            self.flagged.add((record["assessment_id"], record["kind"]))
        if record["kind"] == "suicidal_ideation":
            onset = _at(record["onset_at"])
            self.open_si[record["id"]] = onset
            self.latest_si = max(onset, self.latest_si or onset)

    def new_contraindications(self, e: Any, after: list[Any], where: str) -> None:
        """On an approved case, each contraindication newly flagged records a severe event."""
        before = flagged(self.patient)
        self.patient |= e.data["record"]
        expected = flagged(self.patient) - before if self.approved else set()
        recorded = set()
        for follower in after:
            if follower.actor_role != "system":
                break
            description = follower.data.get("record", {}).get("description") or ""
            if description.startswith(NEW_CONTRAINDICATION):
                assert follower.data["record"]["severity"] == "severe", where
                recorded.add(description.removeprefix(NEW_CONTRAINDICATION))
        recorded.discard("contraindication.hypertension")
        assert recorded == expected, f"{where}: new contraindications {recorded} != {expected}"
        self.contraindications_recorded += len(recorded)

    def changed(self, i: int) -> None:
        self.list_changes += 1
        self.last_change = i

    def clearance(self, record: dict[str, Any], where: str) -> None:
        self.clearances[record["id"]] = record
        if not record["granted"]:
            assert record["expires_at"] is None, where
            return
        assert self.state in DOSING_STATES, f"{where}: granted in {self.state}"
        assert record["systolic"] < 140 and record["diastolic"] < 90, where
        assert record["monitor_present"], where
        assert not self.open_events, f"{where}: granted with adverse events open"
        assert not self.open_si, f"{where}: granted with suicidal ideation unresolved"
        assert self.screening_ok(), f"{where}: granted with a stale screening"
        valid_for = _at(record["expires_at"]) - _at(record["created_at"])
        assert valid_for == timedelta(hours=2), where

    def session(self, record: dict[str, Any], where: str) -> None:
        assert self.state in DOSING_STATES, f"{where}: session in {self.state}"
        completed = _at(record["completed_at"])
        if record["kind"] == "dosing":
            clearance = self.clearances.get(record["clearance_id"])
            assert clearance is not None and clearance["granted"], f"{where}: no granted clearance"
            assert _at(clearance["created_at"]) <= completed <= _at(clearance["expires_at"]), where
            assert record["clearance_id"] not in self.used, f"{where}: clearance used twice"
            self.used.add(record["clearance_id"])
            # A dose recorded with suicidal ideation unresolved was taken before it began.
            assert all(completed <= onset for onset in self.open_si.values()), where
        else:
            assert record["clearance_id"] is None, where
        self.sessions.append((record["kind"], completed))

    def worsened(self) -> list[tuple[str, str, int | None]]:
        """SPEC.md 4.6: every score after the first dose at or above its threshold against
        the baseline (the latest score before the first dose), not flagged yet."""
        doses = [at for kind, at in self.sessions if kind == "dosing"]
        if not doses:
            return []
        first = min(doses)
        found: list[tuple[str, str, int | None]] = []
        for instrument, kind in (("isi", "worsened_insomnia"), ("phq9", "worsened_depression")):
            before = [s for s in self.scores if s[2] == instrument and s[0] < first]
            if not before:
                continue
            base = max(before)[3]
            if instrument == "isi":
                least = min(base + 6, 28) if base > 22 else base + 6
            else:
                least = min(base + 5, 20) if base < 20 else base + 5
            found += [
                (kind, "moderate", s[1])
                for s in self.scores
                if s[2] == instrument
                and s[0] > first
                and s[3] >= least
                and (s[1], kind) not in self.flagged
            ]
        return found

    def expected_events(self, e: Any) -> list[tuple[str, str, int | None]] | None:
        """The adverse events the service must record after a staff ``e``; None: not checked."""
        fact, record = e.data["fact"], e.data["record"]
        found: list[tuple[str, str, int | None]] = []
        if fact == "assessment":
            item9 = record["item9"] or 0
            if record["instrument"] == "phq9" and item9 >= 1:
                severity = "severe" if item9 >= 2 else "moderate"
                found.append(("suicidal_ideation", severity, record["id"]))
        elif fact == "session" and record["kind"] != "dosing":
            return []
        elif fact in ("medication", "medication_update"):
            classes = set((self.activated or {}).get("drug_classes") or ())
            if self.approved and classes & TAPER_CLASSES:
                found.append(("hypnotic_restarted", "moderate", None))
            if self.approved and classes & BLOCKING_CLASSES:
                found.append(("other", "moderate", None))
        elif fact != "session":
            return None
        return found + self.worsened()

    def follow_up(self, e: Any, following: list[Any], where: str) -> None:
        """What the service must record right after an event: the safety rules."""
        if e.kind != "fact":
            return
        record = e.data["record"]
        if e.actor_role != "system":
            expected = self.expected_events(e)
            recorded = [
                (
                    f.data["record"]["kind"],
                    f.data["record"]["severity"],
                    f.data["record"]["assessment_id"],
                )
                for f in following
                if f.kind == "fact" and f.data["fact"] == "adverse_event"
            ]
            if expected is not None:
                assert sorted(recorded, key=str) == sorted(expected, key=str), (
                    f"{where}: the service recorded {recorded}, SPEC.md 4.6 asks for {expected}"
                )
                for kind, severity, _ in expected:
                    CarepathMachine.tally[f"recorded by the service: {kind} {severity}"] += 1
        if e.data["fact"] == "adverse_event":
            kind, severity = record["kind"], record["severity"]
            holds = (
                severity == "severe"
                or kind in ALWAYS_HOLD
                or (severity == "moderate" and kind in HOLD_FROM_MODERATE)
            )
            # ``self.state`` is the state when the event was recorded (holds come after it).
            after = following[0] if following else None
            if holds and self.state in ACTIVE_STATES:
                assert after is not None, f"{where}: an event that holds without a hold"
                assert (after.trigger, after.actor_role) == ("hold", "system"), where


# -- the state machine -------------------------------------------------------------------


class CarepathMachine(RuleBasedStateMachine):
    """Staff recording facts and firing triggers on a few cases, in random order."""

    databases: ClassVar[ExampleDatabases]
    tally: ClassVar[Counter] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.engine = self.databases.fresh()
        self.now = START
        self.actors = {
            "clinician": add_user(self.engine, "clinician", "clinician", ("CA", "NY")),
            "tx_clinician": add_user(self.engine, "tx", "clinician", ("TX",)),
            "coordinator": add_user(self.engine, "coordinator", "coordinator"),
            "admin": add_user(self.engine, "admin", "admin"),
        }
        self.trails: dict[int, list[tuple]] = {}
        self.replays: dict[int, Replay] = {}
        self.steps = -1  # invariants also run once before the first step
        case = self.call(
            cases.create_case,
            data=CaseCreate(patient_ref="p-1", patient_state="CA"),
            actor=self.actors["coordinator"],
        )
        self.case_ids = [case.id]
        self.open_ids = [case.id]
        self.tally["examples"] += 1

    def teardown(self) -> None:
        self.tally["steps"] += self.steps
        self.databases.done(self.engine)

    # -- plumbing --------------------------------------------------------------------------

    def db_state(self) -> tuple:
        """What a refused call must leave unchanged: every case row and every row count."""
        with self.engine.begin() as conn:
            rows = conn.execute(text("SELECT * FROM cases ORDER BY id")).all()
            counts = conn.execute(text(COUNT_ROWS)).one()
            return tuple(tuple(r) for r in rows), tuple(counts)

    def call(self, service: Callable[..., Any], **kwargs: Any) -> Any:
        """One request: its own transaction; a refusal must change nothing."""
        kwargs.setdefault("now", self.now)
        actor: Actor = kwargs["actor"]
        before = self.db_state()
        try:
            with session_scope(self.engine) as session:
                result = service(session, **kwargs)
        except DomainError as refused:
            assert self.db_state() == before, f"{type(refused).__name__} changed the database"
            self.tally[f"{service.__name__} {type(refused).__name__}"] += 1
            return refused
        self.check_appended(max_event_id=before[1][-1], actor=actor)
        self.tally["accepted"] += 1
        return result

    def check_appended(self, max_event_id: int, actor: Actor) -> None:
        """An accepted write appends one event by its actor, then only system events."""
        query = rows_of(EVENTS).where(EVENTS.c.id > max_event_id).order_by(EVENTS.c.id)
        with self.engine.begin() as conn:
            new = conn.execute(query).all()
        assert new, "an accepted write appended no event"
        assert (new[0].actor_id, new[0].actor_role) == (actor.id, actor.role)
        assert all(e.actor_role == "system" and e.actor_id is None for e in new[1:])

    def case_id(self, pick: int) -> int:
        """One of the open cases (a closed one only when none is open)."""
        ids = self.open_ids or self.case_ids
        return ids[pick % len(ids)]

    def case(self, case_id: int) -> Case:
        with session_scope(self.engine) as session:
            return cases.get_case(session, case_id)

    def record_id(self, model: Any, case_id: int, pick: int, **where: Any) -> int:
        """The id of one of the case's records (999, which exists nowhere, if it has none)."""
        query = select(model.id).where(model.case_id == case_id).order_by(model.id)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        with session_scope(self.engine) as session:
            ids = list(session.exec(query).all())
        return ids[pick % len(ids)] if ids else 999

    def taken_at(self, age: int) -> datetime:
        return self.now - timedelta(minutes=age)

    # -- rules: time and cases ---------------------------------------------------------------

    @rule(
        minutes=st.one_of(st.integers(1, 180), st.integers(1, 180), st.integers(180, 60 * 24 * 16))
    )
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule(patient=st.sampled_from([("p-1", "CA"), ("p-2", "TX")]))
    def open_case(self, patient: tuple[str, str]) -> None:
        ref, state = patient
        data = CaseCreate(patient_ref=ref, patient_state=state)
        result = self.call(cases.create_case, data=data, actor=self.actors["coordinator"])
        if isinstance(result, Case):
            self.case_ids.append(result.id)

    # -- rules: facts -------------------------------------------------------------------------

    @rule(pick=picks, history=histories, actor=actors)
    def put_history(self, pick: int, history: HistoryIn, actor: str) -> None:
        self.call(
            patient.put_history,
            case_id=self.case_id(pick),
            data=history,
            actor=self.actors[actor],
        )

    @rule(pick=picks, profile=profiles, actor=actors)
    def put_profile(self, pick: int, profile: ProfileIn, actor: str) -> None:
        self.call(
            patient.put_profile,
            case_id=self.case_id(pick),
            data=profile,
            actor=self.actors[actor],
        )

    @rule(pick=picks, version=st.sampled_from(["2026-1", "2026-1", "2025-1"]))
    def consent(self, pick: int, version: str) -> None:
        data = ConsentCreate(version=version, signed_at=self.now, method="paper")
        self.call(
            patient.record_consent,
            case_id=self.case_id(pick),
            data=data,
            actor=self.actors["coordinator"],
        )

    @rule(
        pick=picks,
        instrument=st.sampled_from(list(INSTRUMENT_MAX)),
        score=st.one_of(st.integers(0, 28), st.integers(19, 28)),  # high ones: worsening
        item9=st.sampled_from([0, 0, 0, 0, 1, 2, 3]),
        age=ages,
    )
    def assess(self, pick: int, instrument: Instrument, score: int, item9: int, age: int) -> None:
        score = min(score, INSTRUMENT_MAX[instrument])
        if instrument == "phq9":  # item 9 is required, and consistent with the total
            score = min(max(score, item9), item9 + 24)
        data = AssessmentCreate(
            instrument=instrument,
            score=score,
            item9=item9 if instrument == "phq9" else None,
            taken_at=self.taken_at(age),
        )
        self.call(
            records.record_assessment,
            case_id=self.case_id(pick),
            data=data,
            actor=self.actors["coordinator"],
        )

    @rule(
        pick=picks,
        phq9=st.integers(12, 24),
        isi=st.integers(18, 28),
        item9=st.sampled_from([0, 0, 0, 1, 2]),
        age=st.sampled_from([0, 0, 0, 30, 60 * 24]),
    )
    def check_in(self, pick: int, phq9: int, isi: int, item9: int, age: int) -> None:
        """A PHQ-9 and an ISI on a case being dosed: the worsening rules' ground."""
        with self.engine.begin() as conn:
            dosed = conn.execute(
                text(
                    "SELECT DISTINCT s.case_id FROM care_sessions s JOIN cases c "
                    "ON c.id = s.case_id WHERE s.kind = 'dosing' AND c.phase != 'closed' "
                    "ORDER BY s.case_id"
                )
            ).all()
        if not dosed:
            return
        case_id = dosed[pick % len(dosed)][0]
        scores: tuple[tuple[Instrument, int], ...] = (("phq9", phq9 + item9), ("isi", isi))
        for instrument, score in scores:
            data = AssessmentCreate(
                instrument=instrument,
                score=score,
                item9=item9 if instrument == "phq9" else None,
                taken_at=self.taken_at(age),
            )
            self.call(
                records.record_assessment,
                case_id=case_id,
                data=data,
                actor=self.actors["coordinator"],
            )

    @rule(pick=picks, systolic=st.integers(90, 180), diastolic=st.integers(55, 115), age=ages)
    def vital(self, pick: int, systolic: int, diastolic: int, age: int) -> None:
        data = VitalCreate(systolic=systolic, diastolic=diastolic, taken_at=self.taken_at(age))
        self.call(
            records.record_vital,
            case_id=self.case_id(pick),
            data=data,
            actor=self.actors["coordinator"],
        )

    @rule(pick=picks, name=st.sampled_from(MED_NAMES))
    def add_medication(self, pick: int, name: str) -> None:
        self.call(
            medications.add_medication,
            case_id=self.case_id(pick),
            data=MedicationCreate(name=name),
            actor=self.actors["coordinator"],
        )

    @rule(pick=picks, med=picks, status=st.sampled_from(["active", "stopped"]), actor=actors)
    def set_medication_status(
        self, pick: int, med: int, status: MedicationStatus, actor: str
    ) -> None:
        case_id = self.case_id(pick)
        self.call(
            medications.update_medication,
            case_id=case_id,
            medication_id=self.record_id(Medication, case_id, med),
            data=MedicationUpdate(status=status),
            actor=self.actors[actor],
        )

    @rule(pick=picks, actor=actors)
    def screen(self, pick: int, actor: str) -> None:
        self.call(
            medications.screen_interactions,
            case_id=self.case_id(pick),
            data=ScreeningCreate(),
            actor=self.actors[actor],
        )

    @rule(pick=picks, med=picks, actor=actors)
    def plan_taper(self, pick: int, med: int, actor: str) -> None:
        case_id = self.case_id(pick)
        data = TaperCreate(
            medication_id=self.record_id(Medication, case_id, med), plan="Halve weekly."
        )
        self.call(medications.plan_taper, case_id=case_id, data=data, actor=self.actors[actor])

    @rule(pick=picks, taper=picks, actor=actors, days=st.integers(-2, 30))
    def confirm_taper(self, pick: int, taper: int, actor: str, days: int) -> None:
        case_id = self.case_id(pick)
        self.call(
            medications.confirm_taper,
            case_id=case_id,
            taper_id=self.record_id(Taper, case_id, taper),
            data=TaperConfirm(last_dose_on=self.now.date() - timedelta(days=days)),
            actor=self.actors[actor],
        )

    @rule(
        pick=picks,
        systolic=st.integers(110, 150),
        diastolic=st.integers(65, 95),
        monitor=st.sampled_from([True, True, True, False]),
        actor=actors,
    )
    def request_clearance(
        self, pick: int, systolic: int, diastolic: int, monitor: bool, actor: str
    ) -> None:
        data = ClearanceCreate(systolic=systolic, diastolic=diastolic, monitor_present=monitor)
        self.call(
            dosing.request_clearance,
            case_id=self.case_id(pick),
            data=data,
            actor=self.actors[actor],
        )

    @rule(
        pick=picks,
        kind=st.sampled_from(["preparation", "dosing", "dosing", "integration"]),
        clearance=st.one_of(st.just(-1), picks),
        minutes=st.integers(-10, 200),
    )
    def record_session(self, pick: int, kind: SessionKind, clearance: int, minutes: int) -> None:
        """A session ``minutes`` after the clearance it uses (the newest one, or any)."""
        case_id = self.case_id(pick)
        clearances = self.rows(DoseClearance, case_id)
        used = clearances[clearance % len(clearances)] if clearances else None
        start = used.created_at if used is not None else self.now - timedelta(hours=1)
        data = SessionCreate(
            kind=kind,
            completed_at=min(start + timedelta(minutes=minutes), self.now),
            clearance_id=used.id if used is not None else 999,
        )
        self.call(
            dosing.record_session,
            case_id=case_id,
            data=data,
            actor=self.actors["coordinator"],
        )

    @rule(
        pick=picks,
        kind=st.sampled_from(EVENT_KINDS),
        severity=st.sampled_from(["mild", "mild", "moderate", "severe"]),
    )
    def adverse_event(self, pick: int, kind: AdverseEventKind, severity: Severity) -> None:
        data = AdverseEventCreate(kind=kind, severity=severity, description="Reported.")
        self.call(
            records.record_adverse_event,
            case_id=self.case_id(pick),
            data=data,
            actor=self.actors["coordinator"],
        )

    @rule(
        pick=picks,
        risk=st.sampled_from(["low", "low", "moderate", "high"]),
        secured=booleans,
        age=ages,
        actor=actors,
    )
    def safety_plan(self, pick: int, risk: RiskLevel, secured: bool, age: int, actor: str) -> None:
        data = SafetyPlanCreate(
            plan="Crisis line; the monitor keeps the medication.",
            reviewed_with_patient_at=self.taken_at(age),
            risk_level=risk,
            means_secured=secured,
        )
        self.call(
            records.record_safety_plan,
            case_id=self.case_id(pick),
            data=data,
            actor=self.actors[actor],
        )

    @rule(pick=picks, event=picks, actor=actors)
    def resolve(self, pick: int, event: int, actor: str) -> None:
        case_id = self.case_id(pick)
        self.call(
            records.resolve_adverse_event,
            case_id=case_id,
            event_id=self.record_id(AdverseEvent, case_id, event),
            data=AdverseEventResolve(note="Reviewed."),
            actor=self.actors[actor],
        )

    # -- rules: triggers --------------------------------------------------------------------

    @rule(pick=picks, data=st.data(), actor=actors, with_body=st.sampled_from([True] * 4 + [False]))
    def fire(self, pick: int, data: st.DataObject, actor: str, with_body: bool) -> None:
        case_id = self.case_id(pick)
        before = self.case(case_id)
        # Mostly a trigger onward from here; any trigger at all (closing ones included) else.
        onward = [
            t.name
            for t in triggers_from(before.state, before.held_from)
            if t.name not in OFF_PATHWAY
        ]
        choices = st.sampled_from(onward) if onward else st.nothing()
        trigger = data.draw(
            st.one_of(choices, choices, st.sampled_from([t.name for t in TRIGGERS])),
            label="trigger",
        )
        body = body_for(trigger) if with_body else TransitionBody()
        who = self.actors[actor]
        result = self.call(
            cases.fire_trigger, case_id=case_id, trigger=trigger, actor=who, body=body
        )
        definition = TRIGGER_BY_NAME[trigger]
        if isinstance(result, Forbidden):
            assert not may_fire(who.role, definition)
        elif isinstance(result, InvalidTransition):
            assert not definition.leaves(before.state, before.held_from)
        elif isinstance(result, ValidationFailed):
            assert not with_body and definition.body
        elif isinstance(result, TransitionBlocked):
            codes = [u.code for u in result.unmet]
            assert codes and set(codes) <= set(definition.requirements(before.state))
        elif isinstance(result, Case):
            assert may_fire(who.role, definition)
            assert result.state == destination(definition, before.state, before.held_from)
            self.tally[f"fired {trigger}"] += 1

    @rule(pick=picks, hops=st.integers(1, 6), choice=st.integers(0, 1))
    def advance(self, pick: int, hops: int, choice: int) -> None:
        """Move a case along the pathway, ``hops`` times: record what the next trigger
        still needs, as a careful team would, then fire it as a licensed clinician."""
        case_id = self.case_id(pick)
        for _ in range(hops):
            case = self.case(case_id)
            onward = [
                t for t in triggers_from(case.state, case.held_from) if t.name not in OFF_PATHWAY
            ]
            if not onward:
                return
            trigger = onward[choice % len(onward)].name
            who = self.actors["tx_clinician" if case.patient_state == "TX" else "clinician"]
            self.catch_up(case_id, trigger, who)
            result = self.call(
                cases.fire_trigger,
                case_id=case_id,
                trigger=trigger,
                actor=who,
                body=body_for(trigger),
            )
            if not isinstance(result, Case):
                return
            self.tally[f"advanced by {trigger}"] += 1

    def catch_up(self, case_id: int, trigger: str, who: Actor) -> None:
        with session_scope(self.engine) as session:
            options = cases.list_triggers(session, case_id=case_id, actor=who, now=self.now)
        (option,) = [o for o in options if o.trigger == trigger]
        needed = {action for u in option.unmet for action in CATCH_UP[u.code]}
        for action in CATCH_UP_ORDER:
            if action in needed:
                getattr(self, f"_catch_up_{action}")(case_id)

    def _catch_up_history(self, case_id: int) -> None:
        data = HistoryIn(**ELIGIBLE_HISTORY)
        self.call(patient.put_history, case_id=case_id, data=data, actor=self.actors["clinician"])

    def _catch_up_profile(self, case_id: int) -> None:
        data = ProfileIn(**ELIGIBLE_PROFILE)
        self.call(patient.put_profile, case_id=case_id, data=data, actor=self.actors["clinician"])

    def _catch_up_consent(self, case_id: int) -> None:
        data = ConsentCreate(version="2026-1", signed_at=self.now, method="electronic")
        self.call(
            patient.record_consent, case_id=case_id, data=data, actor=self.actors["coordinator"]
        )

    def _catch_up_washout(self, case_id: int) -> None:
        self.now += timedelta(days=WASHOUT_WAIT_DAYS, minutes=1)

    def _catch_up_vital(self, case_id: int) -> None:
        """Readings of 120/80 until the mean of the recent ones is below the limit."""
        for _ in range(40):
            data = VitalCreate(systolic=120, diastolic=80, taken_at=self.now)
            self.call(
                records.record_vital, case_id=case_id, data=data, actor=self.actors["coordinator"]
            )
            if self.blood_pressure_below_the_limit(case_id):
                return

    def blood_pressure_below_the_limit(self, case_id: int) -> bool:
        with session_scope(self.engine) as session:
            case = cases.get_case(session, case_id)
            facts = CaseFacts(case=case, now=self.now, session=session)
            unmet = evaluate(["contraindication.hypertension"], facts)
        return not unmet or "blood pressure" not in unmet[0].message

    def _catch_up_baseline(self, case_id: int) -> None:
        self.assess_now(case_id, {"phq9": 15, "gad7": 12, "isi": 18})

    def _catch_up_recent(self, case_id: int) -> None:
        self.assess_now(case_id, {"phq9": 8, "isi": 8})

    def assess_now(self, case_id: int, scores: dict[Instrument, int]) -> None:
        for instrument, score in scores.items():
            item9 = 0 if instrument == "phq9" else None
            data = AssessmentCreate(
                instrument=instrument, score=score, item9=item9, taken_at=self.now
            )
            self.call(
                records.record_assessment,
                case_id=case_id,
                data=data,
                actor=self.actors["coordinator"],
            )

    def _catch_up_tapers(self, case_id: int) -> None:
        """Plan and confirm a taper for every benzodiazepine and Z-drug on the list."""
        clinician = self.actors["clinician"]
        for medication in self.rows(Medication, case_id):
            if medication.drug_class not in TAPER_CLASSES:
                continue
            tapers = [t for t in self.rows(Taper, case_id) if t.medication_id == medication.id]
            if medication.status == "stopped" and all(t.confirmed_at is None for t in tapers):
                self.call(
                    medications.update_medication,
                    case_id=case_id,
                    medication_id=medication.id,
                    data=MedicationUpdate(status="active"),
                    actor=self.actors["coordinator"],
                )
            if medication.status == "stopped" and any(t.confirmed_at for t in tapers):
                continue
            open_tapers = [t.id for t in tapers if t.confirmed_at is None]
            if not open_tapers:
                data = TaperCreate(medication_id=medication.id, plan="Halve weekly.")
                taper = self.call(
                    medications.plan_taper, case_id=case_id, data=data, actor=clinician
                )
                open_tapers = [taper.id]
            if self.case(case_id).state != "evaluation":
                for taper_id in open_tapers:
                    self.call(
                        medications.confirm_taper,
                        case_id=case_id,
                        taper_id=taper_id,
                        data=TaperConfirm(last_dose_on=self.now.date()),
                        actor=clinician,
                    )

    def _catch_up_classify(self, case_id: int) -> None:
        for medication in self.rows(Medication, case_id):
            if "unknown" in medication.drug_classes and medication.status == "active":
                data = MedicationUpdate(drug_class="no_known_interaction", class_reason="Checked.")
                self.call(
                    medications.update_medication,
                    case_id=case_id,
                    medication_id=medication.id,
                    data=data,
                    actor=self.actors["clinician"],
                )

    def _catch_up_screen(self, case_id: int) -> None:
        # Stopped long enough ago that its washout has passed.
        long_ago = self.now.date() - timedelta(days=15)
        for medication in self.rows(Medication, case_id):
            blocking = BLOCKING_CLASSES & set(medication.drug_classes)
            if blocking and (medication.status == "active" or medication.stopped_on != long_ago):
                self.call(
                    medications.update_medication,
                    case_id=case_id,
                    medication_id=medication.id,
                    data=MedicationUpdate(status="stopped", stopped_on=long_ago),
                    actor=self.actors["clinician"],
                )
        self.call(
            medications.screen_interactions,
            case_id=case_id,
            data=ScreeningCreate(),
            actor=self.actors["clinician"],
        )

    def _catch_up_resolve(self, case_id: int) -> None:
        for adverse in self.rows(AdverseEvent, case_id):
            if adverse.resolved_at is None:
                self.call(
                    records.resolve_adverse_event,
                    case_id=case_id,
                    event_id=adverse.id,
                    data=AdverseEventResolve(note="Reviewed."),
                    actor=self.actors["clinician"],
                )

    def _catch_up_safety_plan(self, case_id: int) -> None:
        """A clinician reviews a safety plan with the patient, after the ideation."""
        self.now += timedelta(minutes=1)
        data = SafetyPlanCreate(
            plan="Crisis line; the monitor keeps the medication.",
            reviewed_with_patient_at=self.now,
            risk_level="low",
            means_secured=True,
        )
        self.call(
            records.record_safety_plan,
            case_id=case_id,
            data=data,
            actor=self.actors["clinician"],
        )

    def _catch_up_dose(self, case_id: int) -> None:
        self.dose(case_id)

    def rows(self, model: Any, case_id: int) -> list[Any]:
        query = select(model).where(model.case_id == case_id).order_by(model.id)
        with session_scope(self.engine) as session:
            return list(session.exec(query).all())

    def dose(self, case_id: int) -> None:
        coordinator = self.actors["coordinator"]
        kinds: tuple[SessionKind, ...] = ("preparation", "dosing", "integration")
        for kind in kinds:
            self.now += timedelta(minutes=20)
            clearance_id = None
            if kind == "dosing":
                reading = ClearanceCreate(systolic=120, diastolic=80, monitor_present=True)
                clearance = self.call(
                    dosing.request_clearance, case_id=case_id, data=reading, actor=coordinator
                )
                clearance_id = clearance.id if isinstance(clearance, DoseClearance) else 999
                self.now += timedelta(minutes=20)
            data = SessionCreate(kind=kind, completed_at=self.now, clearance_id=clearance_id)
            self.call(dosing.record_session, case_id=case_id, data=data, actor=coordinator)

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def the_audit_trail_explains_every_case(self) -> None:
        self.steps += 1
        with self.engine.begin() as conn:
            all_cases = conn.execute(rows_of(CASES).order_by(CASES.c.id)).all()
            events = conn.execute(rows_of(EVENTS).order_by(EVENTS.c.id)).all()
            doses = conn.execute(rows_of(SESSIONS).where(SESSIONS.c.kind == "dosing")).all()
            clearances = {c.id: c for c in conn.execute(rows_of(CLEARANCES)).all()}
            unresolved_si = conn.execute(
                rows_of(ADVERSE).where(
                    ADVERSE.c.kind == "suicidal_ideation", ADVERSE.c.resolved_at.is_(None)
                )
            ).all()
            reviews = conn.execute(
                rows_of(REMINDERS).where(REMINDERS.c.kind == "safety_review")
            ).all()
        trails: dict[int, list[Any]] = {}
        for e in events:
            trails.setdefault(e.case_id, []).append(e)
        for case in all_cases:
            self.check_case(case, trails[case.id])
        open_refs = [c.patient_ref for c in all_cases if c.phase != "closed"]
        assert len(open_refs) == len(set(open_refs)), "two open cases for one patient"
        self.open_ids = [c.id for c in all_cases if c.phase != "closed"]

        # Every dosing session used a granted clearance of its case, valid at its time, once.
        used = [d.clearance_id for d in doses]
        assert len(used) == len(set(used)), "a clearance used twice"
        for dose in doses:
            clearance = clearances[dose.clearance_id]
            assert clearance.case_id == dose.case_id and clearance.granted
            assert clearance.created_at <= dose.completed_at <= clearance.expires_at
        self.tally["dosing sessions checked"] += len(doses)

        # Suicidal ideation is never silent: each unresolved one has a safety review that is
        # open, or was acknowledged after it was recorded.
        for si in unresolved_si:
            assert any(
                r.case_id == si.case_id
                and (
                    r.status in ("pending", "sent")
                    or (r.status == "acknowledged" and r.created_at >= si.created_at)
                )
                for r in reviews
            ), f"suicidal ideation #{si.id} has no safety review"
        self.tally["unresolved suicidal ideation checked"] += len(unresolved_si)

    def check_case(self, case: Any, events: list[Any]) -> None:
        # Earlier events never change (each row compared whole, data included).
        trail = [tuple(e) for e in events]
        seen = self.trails.get(case.id, [])
        assert trail[: len(seen)] == seen, f"case {case.id}: an earlier event changed"
        self.trails[case.id] = trail

        # The state is the to_state of the last transition; the version counts the events.
        last = [e for e in events if e.kind == "transition"][-1]
        assert case.state == last.to_state
        assert case.phase == phase_of(case.state)
        assert case.version == len(events)
        assert (case.held_from is not None) == (case.state == "on_hold")

        # The independent replay agrees with every new event and ends where the case is.
        licenses = {a.id: a.license_states for a in self.actors.values()}
        replay = self.replays.setdefault(case.id, Replay(case.patient_state, licenses))
        recorded = replay.contraindications_recorded
        replay.run(events, start=len(seen))
        self.tally["new contraindications"] += replay.contraindications_recorded - recorded
        assert (replay.state, replay.held_from) == (case.state, case.held_from)
        beyond = case.state in PRESCRIBED_OR_LATER or case.held_from in PRESCRIBED_OR_LATER
        if beyond:
            assert replay.prescribed, f"case {case.id} is {case.state} and was never prescribed"
        self.tally[f"in {case.held_from or case.state}"] += 1


def test_catch_up_knows_a_fix_for_every_requirement():
    assert set(CATCH_UP) == set(GUARDS)
    assert {a for actions in CATCH_UP.values() for a in actions} <= set(CATCH_UP_ORDER)


def test_random_sequences_keep_every_invariant(tmp_path, engine, capsys):
    """At least ``CAREPATH_STATEFUL_EXAMPLES`` x ``CAREPATH_STATEFUL_STEPS`` steps (75 x 40).

    Hypothesis ends some examples early (it mutates earlier ones, stop included),
    so rounds run until the total is reached.
    """
    postgres = engine if engine.dialect.name == "postgresql" else None
    CarepathMachine.databases = ExampleDatabases(tmp_path=tmp_path, postgres=postgres)
    policies.install()  # the reminders: every unresolved suicidal ideation has a safety review
    CarepathMachine.tally = tally = Counter()
    target = EXAMPLES * STEPS
    started = time.perf_counter()

    while tally["steps"] < target:
        missing = target - tally["steps"]
        run_state_machine_as_test(
            CarepathMachine,
            settings=settings(
                max_examples=max(1, -(-missing // STEPS)),
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            ),
        )

    elapsed = time.perf_counter() - started
    with capsys.disabled():  # the run's size and time, in the test log
        print(f"\nstateful: {tally['examples']} examples, {tally['steps']} steps in {elapsed:.1f}s")
        print(f"stateful: {dict(sorted(tally.items()))}")
    assert tally["steps"] >= target
