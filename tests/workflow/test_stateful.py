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
- no clearance is granted while a requirement the replay can judge is unmet
  (the state, the pre-dose reading, the monitor, the contact, open events,
  unresolved suicidal ideation, the screening, the interval and the weekly
  limit), and no two are open at once;
- every dosing session whose clearance was absent, void, reused or not valid at
  its ``dosed_at`` carries exactly those deviations, and a deviation is followed by
  an adverse event; doses whose clearance was kept are at least 72 hours apart;
- a clearance open when an adverse event, a medication, history or profile
  change, a hold, a discharge or withdrawal, or its monitor's deactivation is
  recorded is voided right after it, and no clearance is voided otherwise;
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
  every unresolved suicidal ideation has a ``safety_review`` open or acknowledged;
- the controlled-substance record (SPEC.md 4.5): ``units_on_hand`` (as
  ``workflow.cases.units_on_hand`` shows it) equals received dispenses - dosing
  ``units_taken`` - returns, disposals and losses, summed here both from the rows
  and by the replay of the audit trail, and is never negative; no dose takes,
  and no return gives back, more units than are on hand; no clearance is granted
  while fewer than the prescription's ``units_per_dose`` are on hand; a refill is
  accepted only in integration or monitoring, from a licensed clinician, with no
  dispense on its way, at most ``units_per_dose`` + ``refill_grace_units`` on
  hand, and within the prescription's refill count and age; ``ship`` records the
  first dispense of its body and ``confirm_delivery`` its receipt;
- every short count (by more than ``count_tolerance_units``) records exactly one
  ``lost`` return of the shortfall, witness ``count``, and ``substance_misuse``
  (moderate, which holds an active case), and no other count records either; a
  loss staff report records ``other`` (moderate, "N units reported lost");
- no discharged (or ineligible) case has units on hand, and a withdrawal with N
  units on hand records ``other`` (moderate, "withdrawn with N units at home"):
  a withdrawn case keeps at most those N.

Each example gets a fresh database: a new SQLite file, or the PostgreSQL test
database emptied, when ``CAREPATH_TEST_DATABASE_URL`` is set. The size is set
by ``CAREPATH_STATEFUL_EXAMPLES`` and ``CAREPATH_STATEFUL_STEPS``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import count, pairwise
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import event, text
from sqlalchemy import select as rows_of
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from models.db import create_schema, make_engine, session_scope
from models.facts import (
    AdverseEvent,
    CareSession,
    Dispense,
    DoseClearance,
    EmergencyContact,
    Medication,
    MedicationCount,
    MedicationReturn,
    Monitor,
    Taper,
)
from models.reminders import ESCALATION
from models.schemas import (
    AdverseEventCreate,
    AdverseEventKind,
    AdverseEventResolve,
    AssessmentCreate,
    CaseCreate,
    ClearanceCancel,
    ClearanceCreate,
    ConsentCreate,
    CountCreate,
    DispenseCreate,
    EmergencyContactCreate,
    HistoryIn,
    Instrument,
    MedicationCreate,
    MedicationUpdate,
    MonitorCreate,
    MonitorUpdate,
    ProfileIn,
    ReceiptCreate,
    ReturnCreate,
    ReturnKind,
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
from models.settings import settings as RULES
from models.tables import Case
from schedules import policies
from schedules.policies import POLICY_BY_KIND
from schedules.scheduling import assignee, open_reminders
from tests.conftest import add_user, empty_tables
from tests.workflow.conftest import (
    ELIGIBLE_HISTORY,
    ELIGIBLE_PROFILE,
    WASHOUT_WAIT_DAYS,
    MedicationStatus,
    body_for,
)
from workflow import (
    cases,
    contacts,
    dosing,
    drugs,
    medications,
    patient,
    places,
    records,
    substance,
)
from workflow.casefacts import CaseFacts
from workflow.definition import (
    ACTIVE_STATES,
    REFILL_REQUIREMENTS,
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
INTERVAL = timedelta(hours=72)
WEEK = timedelta(hours=168)
CLEARANCE_DEVIATIONS = {
    "clearance.absent",
    "clearance.void",
    "clearance.used",
    "clearance.not_valid_at_dose",
}
VOIDING_FACTS = {"adverse_event", "medication", "medication_update", "history", "profile"}
"""Facts that void the open clearances when they record something new (SPEC.md 4.4)."""
VOID_FACT = "dose_clearance_void"
CRISIS = (180, 110)
"""The crisis limit of a blood pressure (SPEC.md 8): a reading at or above it is an event."""
RISE = (40, 25)
"""A post-dose rise over the clearance's reading that is an event (SPEC.md 4.4)."""
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
MONITOR = MonitorCreate(
    name="Alex",
    relationship="sibling",
    phone="555-0101",
    adult_attested=True,
    trained_on=START.date(),
)
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
cases_with_units = st.sampled_from(["stocked", "stocked", "stocked", "open", "closed"])
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
    # The dose clearance's own (no trigger checks them; ``dose`` registers the people).
    "case.dosing_state": (),
    "emergency_contact.recorded": ("dose",),
    "monitor.registered": ("dose",),
    "dose.interval": (),
    "dose.weekly_limit": (),
    "dose.blood_pressure": (),
    # The controlled-substance record: a dispense received (a refill, if none is on its way),
    # and before discharge every unit still at home returned.
    "units.on_hand": ("units",),
    "medication.reconciled": ("reconcile",),
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
    "units",
    "dose",
    "resolve",
    "safety_plan",
    "reconcile",
)
# What ``prepare_for_a_dose`` records for each unmet requirement of a clearance (besides the
# people and the preparation session), in ``CATCH_UP_ORDER``.
BEFORE_A_DOSE: dict[str, tuple[str, ...]] = {
    "session.preparation": (),
    "consent.signed": ("consent",),
    "assessments.recent": ("recent",),
    "contraindication.hypertension": ("vital",),
    "adverse_events.resolved": ("resolve",),
    "units.on_hand": ("units",),
}
OFF_PATHWAY = {"decline", "hold", "withdraw", "adjust_dose"}
"""Triggers that do not move a case on along the pathway (``adjust_dose`` stays put)."""
BLOCKING_CLASSES = drugs.blocking_classes()

# Core tables: reading rows without building ORM objects keeps each step cheap.
CASES = SQLModel.metadata.tables["cases"]
EVENTS = SQLModel.metadata.tables["audit_events"]
SESSIONS = SQLModel.metadata.tables["care_sessions"]
CLEARANCES = SQLModel.metadata.tables["dose_clearances"]
ADVERSE = SQLModel.metadata.tables["adverse_events"]
REMINDERS = SQLModel.metadata.tables["reminders"]
WORK_ITEMS = SQLModel.metadata.tables["work_items"]
DISPENSES = SQLModel.metadata.tables["dispenses"]
COUNTS = SQLModel.metadata.tables["medication_counts"]
RETURNS = SQLModel.metadata.tables["medication_returns"]

COUNT_WITNESS = "count"
"""The witness of the loss a short count records (SPEC.md 4.5)."""
WITNESS = "Sam Rivera"
LOT = "LOT-2026-B2"
WITHDRAWN_WITH = "withdrawn with {} units at home"
REPORTED_LOST = "{} units reported lost"

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


def crisis(systolic: int, diastolic: int) -> bool:
    """At or above the crisis limit: the systolic or the diastolic (SPEC.md 0)."""
    return systolic >= CRISIS[0] or diastolic >= CRISIS[1]


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
    open_clearances: set[int] = field(default_factory=set)
    voided_at: dict[int, datetime] = field(default_factory=dict)
    cancelled: set[int] = field(default_factory=set)
    expect_void: set[int] = field(default_factory=set)
    used: set[int] = field(default_factory=set)
    monitors: dict[int, bool] = field(default_factory=dict)  # id -> active
    contact: bool = False
    written: dict[str, dict[str, Any]] = field(default_factory=dict)  # history, profile
    doses: list[tuple[datetime, bool]] = field(default_factory=list)  # (dosed_at, clearance kept)
    sessions: list[tuple[str, datetime]] = field(default_factory=list)
    # (taken_at, id, instrument, score) of every assessment; (assessment id, kind) flagged
    scores: list[tuple[datetime, int, str, int]] = field(default_factory=list)
    flagged: set[tuple[int, str]] = field(default_factory=set)
    open_si: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)  # (onset, at)
    latest_si: datetime | None = None
    plans: list[tuple[datetime, int, str]] = field(default_factory=list)  # (reviewed, id, risk)
    approved: bool = False
    activated: dict[str, Any] | None = None  # the medication the last write made active
    prescribed: bool = False
    patient: dict[str, Any] = field(default_factory=dict)  # the history and profile, merged
    contraindications_recorded: int = 0
    # The controlled-substance record (SPEC.md 4.5).
    per_dose: int = 0  # the prescription's units_per_dose
    prescribed_at: datetime | None = None  # the last prescribe or adjust_dose
    refills: int = 0  # of that prescription
    on_its_way: dict[int, int] = field(default_factory=dict)  # dispense id -> units, unreceived
    units: int = 0  # on hand: received - taken - returned, disposed of and lost
    receipts: list[tuple[datetime, int]] = field(default_factory=list)  # received_at, units
    units_taken: list[tuple[datetime, int]] = field(default_factory=list)  # dosed_at, units
    withdrawn_in_transit: tuple[int, int] | None = None  # a dispense on its way at withdrawal
    withdrawn_with: int | None = None  # the units on hand at the withdrawal
    # The record the write of the event just replayed makes right after it (the first
    # dispense of ``ship``, its receipt, a short count's loss), checked by the next event.
    expect_next: tuple[Any, ...] | None = None

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
            expected_here, self.expect_next = self.expect_next, None
            if expected_here is not None:
                self.companion(e, expected_here, where)
            elif e.actor_role != "system":
                assert not self.expect_void, f"{where}: clearances left open: {self.expect_void}"
            if e.kind == "transition":
                self.transition(e, where)
            else:
                self.fact(i, e, where)
            if self.expect_next is not None:
                # The record the write made right after ``e`` belongs to it, whoever it names.
                following = events[i + 1 : i + 2] + system_events_after(events, i + 1)
            else:
                following = system_events_after(events, i)
            if e.kind == "fact" and e.data["fact"] in ("history", "profile"):
                self.new_contraindications(e, following, where)
            if e.kind == "transition" and e.trigger == "withdraw":
                self.units_at_home(following, where)
            self.follow_up(e, following, where)
        assert self.expect_next is None, f"the write ended without {self.expect_next}"
        assert not self.expect_void, f"clearances left open: {self.expect_void}"

    def companion(self, e: Any, expected: tuple[Any, ...], where: str) -> None:
        """``e`` is the record the previous event's write had to make (SPEC.md 4.5)."""
        what, *values = expected
        fact = e.data.get("fact") if e.kind == "fact" else None
        record = e.data.get("record", {})
        if what == "first dispense":
            (units,) = values
            assert fact == "dispense", f"{where}: ship recorded no dispense"
            assert (record["kind"], record["quantity_units"]) == ("first", units), where
            assert record["received_at"] is None, where
        elif what == "receipt":
            (dispense_id,) = values
            assert (fact, record.get("id")) == ("dispense_receipt", dispense_id), (
                f"{where}: confirm_delivery did not receive dispense {dispense_id}"
            )
        else:
            count_id, shortfall = values
            assert fact == "medication_return", f"{where}: count {count_id} recorded no loss"
            found = (record["kind"], record["witness"], record["count_id"], record["units"])
            assert found == ("lost", COUNT_WITNESS, count_id, shortfall), f"{where}: {found}"

    def units_at_home(self, following: list[Any], where: str) -> None:
        """``withdraw`` with units on hand records one ``other`` event naming them."""
        description = WITHDRAWN_WITH.format(self.withdrawn_with)
        if self.withdrawn_in_transit is not None:
            dispense_id, units = self.withdrawn_in_transit
            description += f"; dispense #{dispense_id} ({units} units) not yet received"
        events = [
            (f.data["record"]["kind"], f.data["record"]["severity"])
            for f in following
            if f.data.get("fact") == "adverse_event"
            and f.data["record"]["description"] == description
        ]
        expected = (
            [("other", "moderate")] if self.withdrawn_with or self.withdrawn_in_transit else []
        )
        assert events == expected, f"{where}: {self.withdrawn_with} units at home, events {events}"
        CarepathMachine.tally[f"withdrawn with units at home: {bool(expected)}"] += 1

    def void_open(self, e: Any, monitor_id: int | None = None) -> None:
        """What the service must void right after ``e``: the open clearances (of a monitor)."""
        for clearance_id in list(self.open_clearances):
            if monitor_id is None or self.clearances[clearance_id]["monitor_id"] == monitor_id:
                self.open_clearances.discard(clearance_id)
                self.voided_at[clearance_id] = e.at
                self.expect_void.add(clearance_id)

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
        if e.trigger in ("prescribe", "adjust_dose"):
            self.per_dose = int(e.data.get("units_per_dose") or self.per_dose)
            self.prescribed_at, self.refills = e.at, 0
        if e.trigger == "ship":
            self.expect_next = ("first dispense", e.data.get("quantity_units"))
        if e.trigger == "confirm_delivery" and self.on_its_way:
            self.expect_next = ("receipt", min(self.on_its_way))
        if e.trigger == "discharge":
            assert self.units == 0, f"{where}: discharged with {self.units} units at home"
        if e.trigger == "withdraw":
            self.withdrawn_with = self.units
            self.withdrawn_in_transit = min(self.on_its_way.items(), default=None)
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
        if e.trigger in ("hold", "discharge", "withdraw"):
            self.void_open(e)
        if e.trigger == "hold":
            self.held_from = self.state
        elif e.to_state != "on_hold":
            self.held_from = None
        self.state = e.to_state

    def check_sessions_for_monitoring(self, where: str) -> None:
        kinds = {kind for kind, _ in self.sessions}
        assert {"preparation", "dosing"} <= kinds, where
        first_dose = min(at for kind, at in self.sessions if kind == "dosing")
        assert any(k == "integration" and at > first_dose for k, at in self.sessions), where

    def fact(self, i: int, e: Any, where: str) -> None:
        fact, record = e.data["fact"], e.data["record"]
        self.activated = None
        if fact in VOIDING_FACTS:
            self.voiding(e, fact, record)
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
        elif fact in ("emergency_contact", "monitor", "monitor_update"):
            self.people(e, fact, record)
        elif fact in ("dose_clearance_cancel", "dose_clearance_void"):
            self.closed(fact, record, where)
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
            # Stopping it, or moving its stop date, changes the list: that voids the open
            # clearances (SPEC.md 4.4), as a medication update would.
            if medication[1:] != ["stopped", (kept, classes)]:
                self.changed(i)
                self.void_open(e)
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
        elif fact == "dispense":
            self.dispense(e, record, where)
        elif fact == "dispense_receipt":
            assert record["id"] in self.on_its_way, f"{where}: {record['id']} not on its way"
            assert record["received_at"] is not None, where
            units = self.on_its_way.pop(record["id"])
            self.units += units
            self.receipts.append((_at(record["received_at"]), units))
            CarepathMachine.tally["dispenses received"] += 1
        elif fact == "medication_count":
            self.count(record, where)
        elif fact == "medication_return":
            assert record["units"] <= self.units, f"{where}: {record} with {self.units} on hand"
            if record["kind"] in ("returned", "disposed"):
                assert record["witness"], f"{where}: {record['kind']} without a witness"
            assert record["count_id"] is None or record["witness"] == COUNT_WITNESS, where
            self.units -= record["units"]

    def dispense(self, e: Any, record: dict[str, Any], where: str) -> None:
        """The first dispense (``ship``) or a refill, within the prescription's limits."""
        units = record["quantity_units"]
        assert units <= self.per_dose * RULES.max_doses_per_dispense, f"{where}: {units} units"
        if record["kind"] != "first":
            assert record["kind"] == "refill", where
            assert self.state in DOSING_STATES, f"{where}: refilled in {self.state}"
            assert not self.on_its_way, f"{where}: refilled with {self.on_its_way} on its way"
            most = self.per_dose + RULES.refill_grace_units
            assert self.units <= most, f"{where}: refilled with {self.units} units on hand"
            assert self.refills < RULES.refill_max_count, f"{where}: refill {self.refills + 1}"
            assert self.prescribed_at is not None, where
            age = e.at - self.prescribed_at
            assert age <= timedelta(days=RULES.refill_max_days), f"{where}: prescription {age} old"
            licensed = self.patient_state in self.licenses.get(e.actor_id, ())
            assert licensed, f"{where}: by a clinician not licensed in {self.patient_state}"
            self.refills += 1
            CarepathMachine.tally["refills dispensed"] += 1
        self.on_its_way[record["id"]] = units

    def count(self, record: dict[str, Any], where: str) -> None:
        """A count records the units the record says were at home at its ``counted_at``
        (receipts and doses up to then, every return so far; never below 0), and any
        shortfall beyond the tolerance."""
        at = _at(record["counted_at"])
        expected = max(
            0,
            self.units
            + sum(units for dosed, units in self.units_taken if dosed > at)
            - sum(units for received, units in self.receipts if received > at),
        )
        assert record["expected_units"] == expected, f"{where}: {expected} units then"
        missing = expected - record["units_counted"]
        shortfall = missing if missing > RULES.count_tolerance_units else 0
        assert record["shortfall"] == shortfall, f"{where}: shortfall {record['shortfall']}"
        if shortfall:
            self.expect_next = ("loss", record["id"], shortfall)
        CarepathMachine.tally[f"counts {'short' if shortfall else 'not short'}"] += 1

    def adverse_event(self, record: dict[str, Any]) -> None:
        self.open_events.add(record["id"])
        if record["assessment_id"] is not None:
            self.flagged.add((record["assessment_id"], record["kind"]))
        if record["kind"] == "suicidal_ideation":
            onset = _at(record["onset_at"])
            self.open_si[record["id"]] = (onset, _at(record["created_at"]))
            self.latest_si = max(onset, self.latest_si or onset)

    def new_contraindications(self, e: Any, following: list[Any], where: str) -> None:
        """On an approved case, each contraindication newly flagged records a severe event."""
        before = flagged(self.patient)
        self.patient |= e.data["record"]
        expected = flagged(self.patient) - before if self.approved else set()
        recorded = set()
        for follower in following:
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

    def voiding(self, e: Any, fact: str, record: dict[str, Any]) -> None:
        """A new adverse event, a medication, history or profile change voids the open
        clearances (a write that changes no value does not)."""
        if fact in ("history", "profile"):
            values = {k: v for k, v in record.items() if k not in ("created_at", "updated_at")}
            changed = values != self.written.get(fact)
            self.written[fact] = values
        elif fact == "medication_update":
            medication = self.meds[record["id"]]
            changed = medication[1:] != [record["status"], listed(record)]
        else:
            changed = True
        if changed:
            self.void_open(e)

    def people(self, e: Any, fact: str, record: dict[str, Any]) -> None:
        if fact == "emergency_contact":
            self.contact = True
            return
        was_active = self.monitors.get(record["id"], False)
        self.monitors[record["id"]] = record["active"]
        if fact == "monitor_update" and was_active and not record["active"]:
            self.void_open(e, monitor_id=record["id"])

    def closed(self, fact: str, record: dict[str, Any], where: str) -> None:
        if fact == VOID_FACT:
            assert record["id"] in self.expect_void, f"{where}: voided {record['id']} unexpectedly"
            self.expect_void.discard(record["id"])
            assert (record["void"], record["open"]) == (True, False), where
            CarepathMachine.tally["clearances voided"] += 1
            return
        assert record["id"] in self.open_clearances, f"{where}: cancelled a closed clearance"
        self.open_clearances.discard(record["id"])
        self.cancelled.add(record["id"])

    def clearance(self, record: dict[str, Any], where: str) -> None:
        """A granted clearance: every requirement the replay can judge was met."""
        self.clearances[record["id"]] = record
        if not record["granted"]:
            assert record["expires_at"] is None and not record["open"], where
            return
        at = _at(record["created_at"])
        assert self.state in DOSING_STATES, f"{where}: granted in {self.state}"
        assert record["systolic"] < 140 and record["diastolic"] < 90, where
        assert self.monitors.get(record["monitor_id"]) is True, f"{where}: no active monitor"
        assert self.contact, f"{where}: granted with no emergency contact"
        assert not self.open_events, f"{where}: granted with adverse events open"
        assert not self.open_si, f"{where}: granted with suicidal ideation unresolved"
        assert self.screening_ok(), f"{where}: granted with a stale screening"
        assert not self.open_clearances, f"{where}: granted with {self.open_clearances} open"
        assert self.units >= self.per_dose > 0, f"{where}: granted with {self.units} units"
        assert all(dosed < at - INTERVAL for dosed, _ in self.doses), f"{where}: within 72 h"
        assert sum(dosed >= at - WEEK for dosed, _ in self.doses) < 2, f"{where}: weekly limit"
        valid_for = _at(record["expires_at"]) - at
        assert valid_for == timedelta(hours=2), where
        self.open_clearances.add(record["id"])

    def session(self, record: dict[str, Any], where: str) -> None:
        held_from_dosing = self.state == "on_hold" and self.held_from in DOSING_STATES
        assert self.state in DOSING_STATES or held_from_dosing, f"{where}: session in {self.state}"
        if record["kind"] != "dosing":
            assert record["clearance_id"] is None and record["deviations"] == [], where
            self.sessions.append((record["kind"], _at(record["completed_at"])))
            return
        taken = record["units_taken"] or 0
        assert taken <= self.units, f"{where}: {taken} units taken, {self.units} on hand"
        self.units -= taken
        dosed = _at(record["dosed_at"])
        self.units_taken.append((dosed, taken))
        expected = self.clearance_deviations(record["clearance_id"], dosed)
        found = set(record["deviations"]) & CLEARANCE_DEVIATIONS
        assert found == expected, f"{where}: deviations {found}, expected {expected}"
        for code in expected or {"none"}:
            CarepathMachine.tally[f"doses with clearance deviation {code}"] += 1
        if not expected & {"clearance.absent", "clearance.used"}:
            self.used.add(record["clearance_id"])
            self.open_clearances.discard(record["clearance_id"])
        if not expected:
            # A dose recorded with suicidal ideation unresolved was taken before it began
            # (or, for a late entry, before it was recorded, which voided its clearance):
            # any later dose had no clearance to keep.
            for onset, recorded in self.open_si.values():
                assert dosed <= onset or dosed < recorded, f"{where}: cleared dose after the SI"
        self.doses.append((dosed, not expected))
        kept = sorted(at for at, clean in self.doses if clean)
        assert all(b - a >= INTERVAL for a, b in pairwise(kept)), f"{where}: doses too close"
        self.sessions.append(("dosing", dosed))

    def clearance_deviations(self, clearance_id: int | None, dosed: datetime) -> set[str]:
        """What the replay finds wrong with the clearance a dose names (SPEC.md 4.4)."""
        clearance = self.clearances.get(clearance_id) if clearance_id is not None else None
        if clearance is None or not clearance["granted"]:
            return {"clearance.absent"}
        found = set()
        if clearance_id in self.used:
            found.add("clearance.used")
        voided = self.voided_at.get(clearance_id)
        if (voided is not None and voided <= dosed) or clearance_id in self.cancelled:
            found.add("clearance.void")
        if not _at(clearance["created_at"]) <= dosed <= _at(clearance["expires_at"]):
            found.add("clearance.not_valid_at_dose")
        return found

    def post_dose_rise(self, record: dict[str, Any]) -> str | None:
        """SPEC.md 4.4: ``severe`` for a post-dose reading (or its recheck) at or above the
        crisis limit, ``moderate`` for a rise of 40/25 over the clearance's reading."""
        clearance = self.clearances.get(record["clearance_id"] or 0)
        found = None
        for reading in ("post", "recheck"):
            systolic, diastolic = record[f"{reading}_systolic"], record[f"{reading}_diastolic"]
            if systolic is None or diastolic is None:
                continue
            if crisis(systolic, diastolic):
                return "severe"
            if clearance is not None and (
                systolic - clearance["systolic"] >= RISE[0]
                or diastolic - clearance["diastolic"] >= RISE[1]
            ):
                found = "moderate"
        return found

    def worsened(self) -> list[tuple[str, str, int | None]]:
        """SPEC.md 4.6: every score after the first dose at or above its threshold against
        the baseline (the latest score before the first ``dosed_at``), not flagged yet."""
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
                # SPEC.md 4.6: moderate for an item 9 of 1, severe for 2 or 3.
                severity = "severe" if item9 >= 2 else "moderate"
                found.append(("suicidal_ideation", severity, record["id"]))
        elif fact == "session" and record["kind"] != "dosing":
            return []
        elif fact == "session":
            # SPEC.md 4.4: a deviation is reviewed; a post-dose rise is an event of its own.
            if record["deviations"]:
                found.append(("other", "moderate", None))
            rise = self.post_dose_rise(record)
            if rise is not None:
                found.append(("blood_pressure_increase", rise, None))
        elif fact in ("vital", "dose_clearance"):
            # SPEC.md 4.2, 4.4: a (pre-dose) reading at or above the crisis limit.
            at_crisis = crisis(record["systolic"], record["diastolic"])
            return [("blood_pressure_increase", "severe", None)] if at_crisis else []
        elif fact == "medication_count":
            # SPEC.md 4.5: a short count is substance misuse (moderate: it holds).
            return [("substance_misuse", "moderate", None)] if record["shortfall"] else []
        elif fact == "medication_return" and record["count_id"] is not None:
            return None  # a short count's loss: the count's own events
        elif fact == "medication_return":
            return [("other", "moderate", None)] if record["kind"] == "lost" else []
        elif fact in ("dispense", "dispense_receipt"):
            return []
        elif fact in ("medication", "medication_update"):
            classes = set((self.activated or {}).get("drug_classes") or ())
            if self.approved and classes & TAPER_CLASSES:
                found.append(("hypnotic_restarted", "moderate", None))
            if self.approved and classes & BLOCKING_CLASSES:
                found.append(("other", "moderate", None))
        else:
            return None
        return found + self.worsened()

    def follow_up(self, e: Any, following: list[Any], where: str) -> None:
        """What the service must record right after an event (``following``: the system
        events of the same write, voids included): the safety rules."""
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
                    f"{where}: the service recorded {recorded}, SPEC.md asks for {expected}"
                )
                for kind, severity, _ in expected:
                    CarepathMachine.tally[f"recorded by the service: {kind} {severity}"] += 1
        if e.data["fact"] == "medication_return" and record["kind"] == "lost":
            if record["count_id"] is None:
                said = REPORTED_LOST.format(record["units"])
                assert any(
                    f.data["record"]["description"].startswith(said)
                    for f in following
                    if f.data.get("fact") == "adverse_event"
                ), f"{where}: no event says {said!r}"
            CarepathMachine.tally[f"losses {'by count' if record['count_id'] else 'reported'}"] += 1
        if e.data["fact"] == "session" and record.get("deviations"):
            reviews = [
                f
                for f in following
                if f.data.get("fact") == "adverse_event"
                and f.data["record"]["description"].startswith("dosing deviation: ")
            ]
            assert len(reviews) == 1, f"{where}: {len(reviews)} reviews of the deviations"
        if e.data["fact"] == "adverse_event":
            kind, severity = record["kind"], record["severity"]
            holds = (
                severity == "severe"
                or kind in ALWAYS_HOLD
                or (severity == "moderate" and kind in HOLD_FROM_MODERATE)
            )
            # ``self.state`` is the state when the event was recorded (holds come after it,
            # and after the clearances it voids).
            after = next_besides_voids(following)
            if holds and self.state in ACTIVE_STATES:
                assert after is not None, f"{where}: an event that holds without a hold"
                assert (after.trigger, after.actor_role) == ("hold", "system"), where


def system_events_after(events: list[Any], i: int) -> list[Any]:
    """What the service recorded itself right after ``events[i]``, in the same write: the
    clearances it voided, adverse events, holds (every event up to the next one by staff)."""
    following = []
    for later in events[i + 1 :]:
        if later.actor_role != "system":
            break
        following.append(later)
    return following


def next_besides_voids(following: list[Any]) -> Any:
    """The first of ``following``, passing over the clearances the service voided."""
    return next((f for f in following if f.data.get("fact") != VOID_FACT), None)


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
        self.deviating: set[int] = set()
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
        self.tally["doses with deviations"] += len(self.deviating)
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
        # SPEC.md 6: one event for what the write records, and one by ``system`` for each
        # record or transition the service makes because of it.
        staff = [
            (e.trigger or e.data.get("fact"), e.actor_role)
            for e in new[1:]
            if not (e.actor_role == "system" and e.actor_id is None)
        ]
        assert not staff, f"after {new[0].trigger or new[0].data.get('fact')}: {staff} by staff"

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

    @rule(pick=picks, monitors=st.integers(0, 2), contact=booleans)
    def add_people(self, pick: int, monitors: int, contact: bool) -> None:
        case_id = self.case_id(pick)
        coordinator = self.actors["coordinator"]
        if contact:
            data = EmergencyContactCreate(name="Sam", relationship="spouse", phone="555-0100")
            self.call(contacts.add_emergency_contact, case_id=case_id, data=data, actor=coordinator)
        for _ in range(monitors):
            self.call(contacts.add_monitor, case_id=case_id, data=MONITOR, actor=coordinator)

    @rule(pick=picks, monitor=picks, active=st.sampled_from([False, False, True]))
    def set_monitor(self, pick: int, monitor: int, active: bool) -> None:
        case_id = self.case_id(pick)
        self.call(
            contacts.update_monitor,
            case_id=case_id,
            monitor_id=self.record_id(Monitor, case_id, monitor),
            data=MonitorUpdate(active=active),
            actor=self.actors["coordinator"],
        )

    @rule(
        pick=picks,
        systolic=st.one_of(st.integers(110, 150), st.just(185)),
        diastolic=st.integers(65, 95),
        monitor=st.one_of(picks, st.just(-1)),
        actor=actors,
        prepared=st.sampled_from(["no"] * 4 + ["yes", "yes", "short of units"]),
    )
    def request_clearance(
        self, pick: int, systolic: int, diastolic: int, monitor: int, actor: str, prepared: str
    ) -> None:
        """A clearance asked for at random, or (``prepared``) once a careful team has
        recorded what a dose needs: then mostly granted, and left open for what may void it.
        ``short of units``: everything but a dose's units, past the interval since the last
        dose, on a case brought to integration if none is being dosed; it is refused."""
        case_id = self.case_id(pick)
        monitor_id = self.record_id(Monitor, case_id, monitor) if monitor >= 0 else 999
        short = prepared == "short of units"
        if short:
            self.advance_to_dosing(pick)
            self.now += INTERVAL
        dosable = [c for c in self.open_ids if self.case(c).state in DOSING_STATES]
        if prepared != "no" and dosable:
            case_id = dosable[pick % len(dosable)]
            monitor_id = self.prepare_for_a_dose(case_id, units=not short)
            if short:
                self.dispose_of_all_but_a_dose(case_id, keep=self.per_dose(case_id) - 1)
            systolic, diastolic, actor = 120, 80, "coordinator"
        data = ClearanceCreate(systolic=systolic, diastolic=diastolic, monitor_id=monitor_id)
        result = self.call(
            dosing.request_clearance,
            case_id=case_id,
            data=data,
            actor=self.actors[actor],
        )
        if short and dosable:
            assert not (isinstance(result, DoseClearance) and result.granted)
            if isinstance(result, DoseClearance):
                assert "units.on_hand" in {u["code"] for u in result.unmet}
                self.tally["clearances refused for want of units"] += 1

    @rule(pick=picks, clearance=picks, actor=actors)
    def cancel_clearance(self, pick: int, clearance: int, actor: str) -> None:
        case_id = self.case_id(pick)
        self.call(
            dosing.cancel_clearance,
            case_id=case_id,
            clearance_id=self.record_id(DoseClearance, case_id, clearance),
            data=ClearanceCancel(reason="Not taken."),
            actor=self.actors[actor],
        )

    @rule(
        pick=picks,
        kind=st.sampled_from(["preparation", "dosing", "dosing", "dosing", "integration"]),
        clearance=st.one_of(st.just(-1), picks),
        monitor=picks,
        dosed=st.integers(-10, 200),
        post=st.one_of(st.none(), st.integers(0, 120)),
        post_bp=st.sampled_from([(125, 80)] * 4 + [(165, 85), (185, 100)]),
        observed=st.integers(60, 200),
        dose_mg=st.sampled_from([100.0, 100.0, 150.0]),
        units=st.sampled_from([1, 1, 1, 2]),
    )
    def record_session(
        self,
        pick: int,
        kind: SessionKind,
        clearance: int,
        monitor: int,
        dosed: int,
        post: int | None,
        post_bp: tuple[int, int],
        observed: int,
        dose_mg: float,
        units: int,
    ) -> None:
        """A session; a dose ``dosed`` minutes after the clearance it names (or none), taking
        ``units`` (more than are on hand is refused)."""
        case_id = self.case_id(pick)
        if kind != "dosing":
            data = SessionCreate(kind=kind, completed_at=self.now)
        else:
            clearances = self.rows(DoseClearance, case_id)
            used = (
                clearances[clearance % len(clearances)] if clearances and clearance >= 0 else None
            )
            start = used.created_at if used is not None else self.now - timedelta(hours=3)
            dosed_at = min(start + timedelta(minutes=dosed), self.now)
            fields: dict[str, Any] = {
                "dosed_at": dosed_at,
                "dose_mg": dose_mg,
                "units_taken": units,
                "monitor_id": self.record_id(Monitor, case_id, monitor),
                "clearance_id": used.id if used is not None else None,
                "completed_at": min(dosed_at + timedelta(minutes=observed), self.now),
            }
            if post is not None:
                fields |= {
                    "post_systolic": post_bp[0],
                    "post_diastolic": post_bp[1],
                    "post_taken_at": min(dosed_at + timedelta(minutes=post), self.now),
                }
            data = SessionCreate(kind="dosing", **fields)
        on_hand = self.units(case_id)
        result = self.call(
            dosing.record_session,
            case_id=case_id,
            data=data,
            actor=self.actors["coordinator"],
        )
        if kind == "dosing" and units > on_hand:
            assert isinstance(result, DomainError), f"{units} units taken of {on_hand}"
            self.tally[f"doses of more units than on hand: {type(result).__name__}"] += 1

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

    # -- rules: the controlled-substance record ------------------------------------------------

    @rule(
        pick=picks,
        units=st.sampled_from([8, 8, 4, 2, 12]),
        actor=st.sampled_from(["licensed"] * 4 + ["clinician", "tx_clinician", "coordinator"]),
        how=st.sampled_from(["careful", "careful", "as is", "anywhere"]),
    )
    def refill(self, pick: int, units: int, actor: str, how: str) -> None:
        """A refill, mostly by a licensed clinician on a case being dosed: ``careful``, once
        the units beyond a dose are disposed of and what a refill needs is recorded; ``as
        is`` (often too soon: more units on hand than a refill waits for); or on any open
        case. Its units are not on hand until received."""
        if how != "anywhere":
            self.advance_to_dosing(pick)
        case_id = self.case_id(pick) if how == "anywhere" else self.dosing_case(pick)
        if how == "careful" and self.case(case_id).state in DOSING_STATES:
            self.dispose_of_all_but_a_dose(case_id)
            self.catch_up_on(case_id, REFILL_REQUIREMENTS)
            actor = "licensed"
        before = self.units(case_id)
        on_its_way = self.record_id(Dispense, case_id, 0, received_at=None) != 999
        who = self.licensed(case_id) if actor == "licensed" else self.actors[actor]
        data = DispenseCreate(quantity_units=units, lot=LOT)
        result = self.call(substance.record_dispense, case_id=case_id, data=data, actor=who)
        if before > self.per_dose(case_id) + RULES.refill_grace_units or on_its_way:
            assert not isinstance(result, Dispense), f"refilled with {before} units on hand"
            self.tally[f"refills too soon: {type(result).__name__}"] += 1
        if isinstance(result, Dispense):
            assert (result.kind, result.received_at) == ("refill", None)
        assert self.units(case_id) == before

    @rule(
        pick=picks,
        dispense=picks,
        on_its_way=st.sampled_from([True, True, True, False]),
        age=st.one_of(st.integers(0, 90), st.sampled_from([-60, 60 * 24 * 30])),
        actor=st.sampled_from(["coordinator", "coordinator", "clinician", "admin"]),
    )
    def receive(self, pick: int, dispense: int, on_its_way: bool, age: int, actor: str) -> None:
        """A dispense received (``age`` minutes ago: some in the future, some before it was
        sent), mostly one on its way; its units are then on hand."""
        case_id = self.case_id(pick)
        if on_its_way:
            with self.engine.begin() as conn:
                waiting = conn.execute(
                    rows_of(DISPENSES.c.case_id)
                    .where(DISPENSES.c.received_at.is_(None))
                    .order_by(DISPENSES.c.id)
                ).all()
            if waiting:
                case_id = waiting[pick % len(waiting)][0]
        where = {"received_at": None} if on_its_way else {}
        dispense_id = self.record_id(Dispense, case_id, dispense, **where)
        before = self.units(case_id)
        result = self.call(
            substance.receive_dispense,
            case_id=case_id,
            dispense_id=dispense_id,
            data=ReceiptCreate(received_at=self.taken_at(age)),
            actor=self.actors[actor],
        )
        gained = result.quantity_units if isinstance(result, Dispense) else 0
        assert self.units(case_id) == before + gained

    @rule(
        pick=picks,
        how=st.sampled_from(["exact", "exact", "short", "short", "over"]),
        by=st.integers(1, 3),
        which=cases_with_units,
        age=st.integers(0, 120),
        actor=st.sampled_from(["coordinator", "coordinator", "clinician", "admin"]),
    )
    def count(self, pick: int, how: str, by: int, which: str, age: int, actor: str) -> None:
        """A count of the units at home: exact, short or over; mostly on a case with units,
        now and then on a closed case. A shortfall beyond the tolerance is lost from the
        record (SPEC.md 4.5)."""
        case_id = self.some_case(pick, which)
        on_hand, counted_at = self.units(case_id), self.taken_at(age)
        then = self.units_then(case_id, counted_at)
        counted = {"exact": then, "short": max(0, then - by), "over": then + by}[how]
        data = CountCreate(units_counted=counted, counted_at=counted_at)
        result = self.call(
            substance.record_count, case_id=case_id, data=data, actor=self.actors[actor]
        )
        if isinstance(result, MedicationCount):
            missing = then - counted
            shortfall = missing if missing > RULES.count_tolerance_units else 0
            assert (result.expected_units, result.shortfall) == (then, shortfall)
            assert self.units(case_id) == on_hand - shortfall
            found = "a shortfall" if shortfall else "no shortfall"
            self.tally[f"counts with {found} on a {self.case(case_id).phase} case"] += 1
        else:
            assert self.units(case_id) == on_hand

    @rule(
        pick=picks,
        portion=st.sampled_from(["some", "some", "all", "all", "more"]),
        kind=st.sampled_from(["returned", "disposed", "lost", "lost"]),
        witnessed=st.sampled_from([True, True, True, False]),
        which=cases_with_units,
    )
    def give_back(
        self, pick: int, portion: str, kind: ReturnKind, witnessed: bool, which: str
    ) -> None:
        """Units returned, disposed of or lost: some or all of those on hand, or more (with
        none on hand, any), which is refused and changes nothing."""
        case_id = self.some_case(pick, which)
        on_hand = self.units(case_id)
        units = {"some": max(1, on_hand // 2), "all": max(1, on_hand), "more": on_hand + 1}[portion]
        units = min(units, 100)
        data = ReturnCreate(units=units, kind=kind, witness=WITNESS if witnessed else None)
        result = self.call(
            substance.record_return, case_id=case_id, data=data, actor=self.actors["coordinator"]
        )
        if units > on_hand:
            assert isinstance(result, ValidationFailed), f"{units} units of {on_hand}: {result}"
            self.tally["returns of more than on hand refused"] += 1
        if isinstance(result, MedicationReturn):
            assert units <= on_hand and (witnessed or kind == "lost")
            self.tally[f"{kind} on a {self.case(case_id).phase} case"] += 1
        gone = result.units if isinstance(result, MedicationReturn) else 0
        assert self.units(case_id) == on_hand - gone

    @rule(pick=picks, portion=st.sampled_from(["some", "all", "all", "more"]))
    def report_loss(self, pick: int, portion: str) -> None:
        """Staff report units lost (no witness): an event a clinician reviews."""
        self.give_back(pick, portion, "lost", witnessed=False, which="stocked")

    @rule(pick=picks, actor=st.sampled_from(["coordinator", "clinician"]))
    def withdraw(self, pick: int, actor: str) -> None:
        """A patient with units at home leaves the program: the service records them."""
        case_id = self.some_case(pick, "stocked and open")
        on_hand = self.units(case_id)
        result = self.call(
            cases.fire_trigger,
            case_id=case_id,
            trigger="withdraw",
            actor=self.actors[actor],
            body=body_for("withdraw"),
        )
        if isinstance(result, Case):
            assert self.units(case_id) == on_hand

    def units(self, case_id: int) -> int:
        """The case's units on hand, as the service shows them."""
        with session_scope(self.engine) as session:
            return cases.units_on_hand(session, [case_id])[case_id]

    def units_then(self, case_id: int, at: datetime) -> int:
        """What a count taken at ``at`` should find, summed here from the rows: dispenses
        received by then, less doses taken by then and every return recorded so far."""
        received = sum(
            d.quantity_units
            for d in self.rows(Dispense, case_id)
            if d.received_at is not None and d.received_at <= at
        )
        taken = sum(
            s.units_taken or 0
            for s in self.rows(CareSession, case_id)
            if s.kind == "dosing" and s.dosed_at is not None and s.dosed_at <= at
        )
        left = sum(r.units for r in self.rows(MedicationReturn, case_id))
        return max(0, received - taken - left)

    def per_dose(self, case_id: int) -> int:
        return int((self.case(case_id).prescription or {}).get("units_per_dose") or 1)

    def licensed(self, case_id: int) -> Actor:
        """A clinician licensed in the case's patient_state."""
        return self.actors[
            "tx_clinician" if self.case(case_id).patient_state == "TX" else "clinician"
        ]

    def dosing_case(self, pick: int) -> int:
        """A case in integration or monitoring, if there is one; else any open case."""
        with self.engine.begin() as conn:
            dosable = conn.execute(
                rows_of(CASES.c.id).where(CASES.c.state.in_(DOSING_STATES)).order_by(CASES.c.id)
            ).all()
        return dosable[pick % len(dosable)][0] if dosable else self.case_id(pick)

    def some_case(self, pick: int, which: str) -> int:
        """A case with units on hand (``stocked``), a closed one (``closed``: with units, if
        one has), or an open one (``open``, and when there is none of the kind asked for)."""
        with self.engine.begin() as conn:
            rows = conn.execute(rows_of(CASES.c.id, CASES.c.phase).order_by(CASES.c.id)).all()
        with session_scope(self.engine) as session:
            units = cases.units_on_hand(session, [r.id for r in rows])
        closed = [r.id for r in rows if r.phase == "closed"]
        stocked = [r.id for r in rows if units[r.id] > 0]
        ids = {
            "stocked": stocked,
            "stocked and open": [i for i in stocked if i not in closed],
            "closed": [i for i in closed if units[i] > 0] or closed,
        }.get(which)
        return ids[pick % len(ids)] if ids else self.case_id(pick)

    def catch_up_on(self, case_id: int, codes: tuple[str, ...]) -> None:
        """Record what ``codes`` still need, as ``catch_up`` does for a trigger."""
        clinician = self.licensed(case_id)  # one session at a time: each takes the lock
        with session_scope(self.engine) as session:
            case = cases.get_case(session, case_id)
            facts = CaseFacts(case=case, now=self.now, actor=clinician, session=session)
            needed = {action for u in evaluate(list(codes), facts) for action in CATCH_UP[u.code]}
        for action in CATCH_UP_ORDER:
            if action in needed:
                getattr(self, f"_catch_up_{action}")(case_id)

    def dispose_of_all_but_a_dose(self, case_id: int, keep: int | None = None) -> None:
        """Units beyond ``keep`` (a dose's, by default) disposed of, seen by the monitor."""
        extra = self.units(case_id) - (self.per_dose(case_id) if keep is None else keep)
        if extra > 0:
            data = ReturnCreate(units=min(extra, 100), kind="disposed", witness=WITNESS)
            self.call(
                substance.record_return,
                case_id=case_id,
                data=data,
                actor=self.actors["coordinator"],
            )

    # -- rules: triggers --------------------------------------------------------------------

    @rule(
        pick=picks,
        data=st.data(),
        actor=actors,
        with_body=st.sampled_from([True] * 4 + [False]),
        per_dose=st.sampled_from([None, None, None, 2, 1]),
    )
    def fire(
        self, pick: int, data: st.DataObject, actor: str, with_body: bool, per_dose: int | None
    ) -> None:
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
        if trigger == "adjust_dose" and with_body and per_dose is not None:
            body = body_for(trigger, units_per_dose=per_dose)
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

    @rule(
        pick=picks,
        hops=st.integers(1, 6),
        choice=st.integers(0, 1),
        until=st.sampled_from([None, None, "integration", "monitoring"]),
    )
    def advance(self, pick: int, hops: int, choice: int, until: str | None) -> None:
        """Move a case along the pathway, ``hops`` times: record what the next trigger
        still needs, as a careful team would, then fire it as a licensed clinician.
        With ``until``, stop on arriving there: the dosing rules then get a case to dose."""
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
            if result.state == until:
                return

    @rule(pick=picks)
    def advance_to_dosing(self, pick: int) -> None:
        """Bring a case on to integration, where the dosing cycle's rules have work to do."""
        if self.case(self.case_id(pick)).state not in DOSING_STATES:
            self.advance(pick, hops=6, choice=0, until="integration")

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

    def _catch_up_units(self, case_id: int) -> None:
        """A dose's units on hand: the dispense on its way received, or a refill (by a
        licensed clinician) first."""
        if self.units(case_id) >= self.per_dose(case_id):
            return
        dispense_id = self.record_id(Dispense, case_id, 0, received_at=None)
        if dispense_id == 999:
            data = DispenseCreate(quantity_units=4 * self.per_dose(case_id), lot=LOT)
            refill = self.call(
                substance.record_dispense, case_id=case_id, data=data, actor=self.licensed(case_id)
            )
            if not isinstance(refill, Dispense) or refill.id is None:
                return
            dispense_id = refill.id
        self.call(
            substance.receive_dispense,
            case_id=case_id,
            dispense_id=dispense_id,
            data=ReceiptCreate(received_at=self.now),
            actor=self.actors["coordinator"],
        )

    def _catch_up_reconcile(self, case_id: int) -> None:
        """Every unit still at home returned, seen by the monitor."""
        units = self.units(case_id)
        if units:
            data = ReturnCreate(units=units, kind="returned", witness=WITNESS)
            self.call(
                substance.record_return,
                case_id=case_id,
                data=data,
                actor=self.actors["coordinator"],
            )

    def rows(self, model: Any, case_id: int) -> list[Any]:
        query = select(model).where(model.case_id == case_id).order_by(model.id)
        with session_scope(self.engine) as session:
            return list(session.exec(query).all())

    def people(self, case_id: int) -> int:
        """An emergency contact and an active treatment monitor, unless the case has them:
        the active monitor's id (999 if none could be registered)."""
        coordinator = self.actors["coordinator"]
        if not self.rows(EmergencyContact, case_id):
            data = EmergencyContactCreate(name="Sam", relationship="spouse", phone="555-0100")
            self.call(contacts.add_emergency_contact, case_id=case_id, data=data, actor=coordinator)
        monitors = [m for m in self.rows(Monitor, case_id) if m.active]
        if not monitors:
            monitor = self.call(
                contacts.add_monitor, case_id=case_id, data=MONITOR, actor=coordinator
            )
            monitors = [monitor] if isinstance(monitor, Monitor) else []
        return monitors[0].id if monitors else 999

    def prepare_for_a_dose(self, case_id: int, units: bool = True) -> int:
        """What a careful team records before asking for a clearance (SPEC.md 3.3): the
        people, a preparation session, current scores, every adverse event resolved, and
        (with ``units``) a dose's units on hand. The monitor's id."""
        monitor_id = self.people(case_id)
        with session_scope(self.engine) as session:
            case = cases.get_case(session, case_id)
            facts = CaseFacts(case=case, now=self.now, session=session)
            unmet = {u.code for u in evaluate(list(BEFORE_A_DOSE), facts)}
        if "session.preparation" in unmet:
            data = SessionCreate(kind="preparation", completed_at=self.now)
            self.call(
                dosing.record_session, case_id=case_id, data=data, actor=self.actors["coordinator"]
            )
        for action in CATCH_UP_ORDER:
            if any(action in BEFORE_A_DOSE[code] for code in unmet) and (
                units or action != "units"
            ):
                getattr(self, f"_catch_up_{action}")(case_id)
        return monitor_id

    def dose(self, case_id: int) -> None:
        """A preparation, a cleared dose with its observation, and integration, as a careful
        team records them (the people a dose needs first)."""
        coordinator = self.actors["coordinator"]
        monitor_id = self.people(case_id)
        self._catch_up_units(case_id)
        self.now += timedelta(minutes=20)
        data = SessionCreate(kind="preparation", completed_at=self.now)
        self.call(dosing.record_session, case_id=case_id, data=data, actor=coordinator)
        self.now += timedelta(minutes=20)
        reading = ClearanceCreate(systolic=120, diastolic=80, monitor_id=monitor_id)
        clearance = self.call(
            dosing.request_clearance, case_id=case_id, data=reading, actor=coordinator
        )
        granted = isinstance(clearance, DoseClearance) and clearance.granted
        dosed_at = self.now + timedelta(minutes=15)
        self.now += timedelta(hours=2, minutes=30)
        data = SessionCreate(
            kind="dosing",
            clearance_id=clearance.id if granted else 999,
            dosed_at=dosed_at,
            dose_mg=100.0,
            units_taken=self.per_dose(case_id),
            monitor_id=monitor_id,
            post_systolic=124,
            post_diastolic=80,
            post_taken_at=dosed_at + timedelta(minutes=30),
            completed_at=self.now,
        )
        self.call(dosing.record_session, case_id=case_id, data=data, actor=coordinator)
        self.now += timedelta(minutes=20)
        data = SessionCreate(kind="integration", completed_at=self.now)
        self.call(dosing.record_session, case_id=case_id, data=data, actor=coordinator)

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def the_audit_trail_explains_every_case(self) -> None:
        self.steps += 1
        with self.engine.begin() as conn:
            all_cases = conn.execute(rows_of(CASES).order_by(CASES.c.id)).all()
            events = conn.execute(rows_of(EVENTS).order_by(EVENTS.c.id)).all()
            doses = conn.execute(rows_of(SESSIONS).where(SESSIONS.c.kind == "dosing")).all()
            clearances = conn.execute(rows_of(CLEARANCES)).all()
            unresolved_si = conn.execute(
                rows_of(ADVERSE).where(
                    ADVERSE.c.kind == "suicidal_ideation", ADVERSE.c.resolved_at.is_(None)
                )
            ).all()
            reviews = conn.execute(
                rows_of(REMINDERS).where(REMINDERS.c.kind == "safety_review")
            ).all()
            dispenses = conn.execute(rows_of(DISPENSES)).all()
            counts = conn.execute(rows_of(COUNTS)).all()
            returns = conn.execute(rows_of(RETURNS)).all()
            misuse = conn.execute(
                rows_of(ADVERSE).where(ADVERSE.c.kind == "substance_misuse")
            ).all()
        with session_scope(self.engine) as session:
            shown = cases.units_on_hand(session, [c.id for c in all_cases])
        # The units on hand from the rows, summed here: received - taken - returned.
        by_rows: Counter = Counter()
        for d in dispenses:
            by_rows[d.case_id] += d.quantity_units if d.received_at is not None else 0
        for d in doses:
            by_rows[d.case_id] -= d.units_taken or 0
        for r in returns:
            by_rows[r.case_id] -= r.units
        trails: dict[int, list[Any]] = {}
        for e in events:
            trails.setdefault(e.case_id, []).append(e)
        for case in all_cases:
            self.check_case(case, trails[case.id])
            self.check_units(case, shown[case.id], by_rows[case.id])
        self.check_counts(counts, returns, misuse)
        self.check_places(all_cases)
        self.check_reminders_wanted(all_cases)
        open_refs = [c.patient_ref for c in all_cases if c.phase != "closed"]
        assert len(open_refs) == len(set(open_refs)), "two open cases for one patient"
        self.open_ids = [c.id for c in all_cases if c.phase != "closed"]

        # No two clearances of a case open at once; a clearance used by one dose alone; every
        # dose names a clearance of its own case, if any.
        open_by_case = Counter(c.case_id for c in clearances if c.open)
        assert all(n <= 1 for n in open_by_case.values()), f"two clearances open: {open_by_case}"
        by_id = {c.id: c for c in clearances}
        used = [
            d.clearance_id for d in doses if d.clearance_id and "clearance.used" not in d.deviations
        ]
        assert len(used) == len(set(used)), "a clearance used twice without the deviation"
        assert all(by_id[d.clearance_id].case_id == d.case_id for d in doses if d.clearance_id)
        self.tally["dosing sessions checked"] += len(doses)
        self.deviating |= {d.id for d in doses if d.deviations}

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

    def check_places(self, all_cases: Sequence[Any]) -> None:
        """Each case's place on the worklist is up to date, however the case got there: placing
        it again from its open reminders and its state changes nothing (``workflow.places``)."""
        with self.engine.begin() as conn:
            before = conn.execute(rows_of(WORK_ITEMS).order_by(WORK_ITEMS.c.case_id)).all()
        with Session(self.engine) as session:
            for row in all_cases:
                places.refresh(session, session.get_one(Case, row.id), self.now)
            session.flush()
            after = session.connection().execute(rows_of(WORK_ITEMS).order_by(WORK_ITEMS.c.case_id))
            assert before == after.all(), "a case's place on the worklist is out of date"
            session.rollback()
        self.tally["places checked"] += len(before)

    def check_reminders_wanted(self, all_cases: Sequence[Any]) -> None:
        """No reminder stays open once its policy no longer wants it: whatever ended it (a fact
        or a transition) cancelled it in the same write. Each open one (but an escalation) is
        for the case's current assignee of its role."""
        with Session(self.engine) as session:
            for row in all_cases:
                case = session.get_one(Case, row.id)
                facts = CaseFacts(case=case, now=self.now, session=session)
                for reminder in open_reminders(session, case.id):
                    policy = POLICY_BY_KIND[reminder.kind]
                    assert not policy.satisfied(facts, reminder), (
                        f"case {case.id}: {reminder.kind} #{reminder.id} is open but done"
                    )
                    if reminder.kind != ESCALATION:  # an escalation goes to a whole role
                        assert reminder.recipient_id == assignee(case, reminder.recipient_role)
                    self.tally["open reminders checked"] += 1

    def check_units(self, case: Any, shown: int, by_rows: int) -> None:
        """The case's units on hand, three ways; none on a case closed other than by
        withdrawal, and no more than were at home at the withdrawal."""
        replayed = self.replays[case.id].units
        assert shown == by_rows == replayed, f"case {case.id}: {shown}, {by_rows}, {replayed}"
        assert shown >= 0, f"case {case.id}: {shown} units on hand"
        if case.phase == "closed" and shown:
            withdrawn_with = self.replays[case.id].withdrawn_with
            assert case.state == "withdrawn", f"case {case.id}: {case.state}, {shown} units"
            assert withdrawn_with is not None and shown <= withdrawn_with, case.id
            self.tally["withdrawn cases with units at home"] += 1
        self.tally[f"cases with units on hand: {shown > 0}"] += 1

    def check_counts(
        self, counts: Sequence[Any], returns: Sequence[Any], misuse: Sequence[Any]
    ) -> None:
        """Each short count has one loss of its shortfall, and the service records
        ``substance_misuse`` once for each short count and never otherwise."""
        losses = Counter(r.count_id for r in returns if r.count_id is not None)
        for c in counts:
            short = c.expected_units - c.units_counted
            assert c.shortfall == (short if short > RULES.count_tolerance_units else 0), c.id
            assert losses[c.id] == (1 if c.shortfall else 0), f"count {c.id}: {losses[c.id]}"
        short_counts = Counter(c.case_id for c in counts if c.shortfall)
        flagged = Counter(a.case_id for a in misuse if a.recorded_by_system)
        assert flagged == short_counts, f"substance_misuse {flagged}, short counts {short_counts}"
        assert all(a.severity == "moderate" for a in misuse if a.recorded_by_system)
        by_id = {c.id: c for c in counts}
        for r in returns:
            if r.count_id is not None:
                count = by_id[r.count_id]
                assert (r.case_id, r.kind, r.witness) == (count.case_id, "lost", COUNT_WITNESS)
                assert r.units == count.shortfall, f"loss {r.id}: {r.units} units"

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
