"""Helpers for the workflow tests: a `Clinic` that drives cases through the real services.

Every helper opens its own transaction, exactly as one API request would, and
passes the clinic's clock in: tests move time with ``clinic.tick(...)``, never
by sleeping. ``case_in(state)`` brings a fresh case to any state through the
real services, with the guards of every trigger leaving that state satisfied.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from models.db import session_scope
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
from models.settings import Settings
from models.tables import AuditEvent, Case
from tests.conftest import add_user
from workflow import cases, contacts, dosing, medications, patient, records, substance
from workflow.casefacts import BloodPressure, CaseFacts
from workflow.definition import INITIAL, TRIGGER_BY_NAME, Actor

FACT_TABLES = (
    History,
    Profile,
    Consent,
    Assessment,
    Medication,
    InteractionScreening,
    Taper,
    Vital,
    DoseClearance,
    CareSession,
    AdverseEvent,
    EmergencyContact,
    Monitor,
    SafetyPlan,
    Dispense,
    MedicationCount,
    MedicationReturn,
)


def read_every_view(facts: CaseFacts) -> None:
    """Make every read the guards use, so the view answers after its session closes."""
    for instrument in ("phq9", "gad7", "isi"):
        facts.latest_assessment(instrument)
    facts.latest_event("suicidal_ideation")
    for name in (
        "history",
        "profile",
        "current_consent",
        "approved",
        "latest_vital",
        "latest_granted_clearance",
        "latest_screening",
        "session_stats",
        "dosed_with_granted_clearance",
        "emergency_contact_recorded",
        "open_clearances",
        "medications",
        "tapers",
        "open_adverse_events",
        "latest_safety_plan",
        "approved",
        "units_on_hand",
        "unreceived_dispense",
        "last_count",
    ):
        getattr(facts, name)
    facts.blood_pressure_mean(facts.rules.baseline_window_days)


ELIGIBLE_HISTORY: dict[str, Any] = {
    "insomnia_nights_per_week": 5,
    "insomnia_duration_months": 12,
    "diagnoses": ["depression"],
    "insomnia_mood_driven": True,
    "failed_antidepressant_trials": 2,
    "cbti_completed": True,
    "seeking_sleep_med_replacement": False,
    "substance_use_disorder_history": False,
    "uncontrolled_hypertension": False,
    "active_psychosis": False,
    "psychosis_or_mania_history": False,
    "severe_psychiatric_instability": False,
    "significant_breathing_problems": False,
    "sleep_apnea": False,
    "aneurysm_avm_or_ich": False,
    "recent_mi_or_stroke": False,
}
ELIGIBLE_PROFILE: dict[str, Any] = {
    "date_of_birth": date(1984, 6, 15),
    "pregnant": False,
    "breastfeeding": False,
}
ELIGIBLE_SCORES: dict[Instrument, int] = {"phq9": 18, "gad7": 12, "isi": 20}
MedicationStatus = Literal["active", "stopped"]
WASHOUT_WAIT_DAYS = 14
"""The longest washout of a benzodiazepine or Z-drug (the long-acting ones), in days."""

# A sample value for every body field a trigger may require.
BODY_SAMPLES: dict[str, Any] = {
    "reason": "Recorded by the test.",
    "dose_mg": 100.0,
    "route": "sublingual",
    "formulation": "ketamine 100 mg sublingual troche",
    "units_per_dose": 1,
    "rationale": "Partial response at the current dose.",
    "carrier": "UPS",
    "tracking_number": "1Z999AA10123456784",
    "quantity_units": 8,
    "lot": "LOT-2026-A1",
}

# How a test reaches each state: from which state, by which trigger.
# ``on_hold`` is reached from the state it is held from (``case_in(held_from=...)``).
ROUTE: dict[str, tuple[str, str]] = {
    "delivery.awaiting_prescription": ("evaluation", "approve"),
    "delivery.prescribed": ("delivery.awaiting_prescription", "prescribe"),
    "delivery.shipped": ("delivery.prescribed", "ship"),
    "integration": ("delivery.shipped", "confirm_delivery"),
    "monitoring": ("integration", "start_monitoring"),
    "ineligible": ("evaluation", "decline"),
    "discharged": ("monitoring", "discharge"),
    "withdrawn": ("evaluation", "withdraw"),
}

# What ``case_in`` records on arrival in a state so every trigger leaving it may fire.
PREPARE: dict[str, str] = {
    "evaluation": "make_eligible",
    "delivery.awaiting_prescription": "ready_to_prescribe",
    "integration": "complete_sessions",
}

# Dose at +15 min, the post-dose reading at +45 min, completed at +2 h 30: a clean dose.
DOSED_AFTER = timedelta(minutes=15)
POST_AFTER = timedelta(minutes=30)
COMPLETED_AFTER = timedelta(hours=2, minutes=15)


def ongoing_met(now: datetime, rules: Any = None) -> dict[str, Any]:
    """``CaseFacts.preloaded`` answers of a case (id 1, medication list version 0) with no
    database that meets every code of ``ONGOING``: an eligible history and profile, a
    blood pressure of 120/80, an empty medication list screened clear just now."""
    from models.settings import settings
    from workflow import drugs

    rules = rules or settings
    screening = InteractionScreening(
        id=1,
        case_id=1,
        medication_list_version=0,
        result="clear",
        drug_table_version=drugs.current_table(rules).version,
        created_at=now,
    )
    return {
        "history": History(id=1, case_id=1, **ELIGIBLE_HISTORY),
        "profile": Profile(id=1, case_id=1, **ELIGIBLE_PROFILE),
        f"blood_pressure_mean:{rules.baseline_window_days}": BloodPressure(120, 80),
        "medications": [],
        "tapers": [],
        "latest_screening": screening,
    }


def body_for(trigger: str, **overrides: Any) -> TransitionBody:
    """A body carrying every field ``trigger`` requires."""
    fields = {name: BODY_SAMPLES[name] for name in TRIGGER_BY_NAME[trigger].body}
    return TransitionBody(**(fields | overrides))


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused call must leave as it was."""

    case: dict[str, Any]
    events: tuple[tuple[Any, ...], ...]
    facts: dict[str, int]


@dataclass
class Clinic:
    """Staff and a clock, driving cases through the real workflow services."""

    engine: Engine
    clinician: Actor
    coordinator: Actor
    now: datetime
    _patients: itertools.count = field(default_factory=lambda: itertools.count(1))
    monitors: dict[int, int] = field(default_factory=dict)
    """Each case's treatment monitor (the first registered), for clearances and doses."""

    # -- plumbing ------------------------------------------------------------

    def tick(self, **delta: float) -> datetime:
        """Move the clock forward and return the new time."""
        self.now += timedelta(**delta)
        return self.now

    def call(self, service: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Run one service call in its own transaction, at the clinic's time by default."""
        kwargs.setdefault("now", self.now)
        with session_scope(self.engine) as session:
            return service(session, **kwargs)

    def read(self, query: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Run a read (``query(session, **kwargs)``) with no clock, in its own transaction."""
        with session_scope(self.engine) as session:
            return query(session, **kwargs)

    def case(self, case_id: int) -> Case:
        return self.read(lambda s: cases.get_case(s, case_id))

    def events(self, case_id: int) -> list[AuditEvent]:
        query = select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(col(AuditEvent.id))
        return self.read(lambda s: list(s.exec(query).all()))

    def rows(self, model: Any, case_id: int) -> list[Any]:
        query = select(model).where(model.case_id == case_id).order_by(model.id)
        return self.read(lambda s: list(s.exec(query).all()))

    def facts(self, case_id: int, actor: Actor | None = None) -> CaseFacts:
        """Every fact of the case, loaded now, for evaluating guards directly."""
        with session_scope(self.engine) as session:
            case = cases.get_case(session, case_id)
            facts = CaseFacts(
                case=case, now=self.now, actor=actor or self.clinician, session=session
            )
            read_every_view(facts)
        facts.session = None  # never reach back into a closed session
        return facts

    def snapshot(self, case_id: int) -> Snapshot:
        """The case row, its audit trail and how many facts of each kind it has."""

        def take(session: Session) -> Snapshot:
            case = cases.get_case(session, case_id)
            events = session.exec(
                select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(col(AuditEvent.id))
            ).all()
            counts = {
                model.__name__: session.exec(
                    select(func.count()).select_from(model).where(model.case_id == case_id)
                ).one()
                for model in FACT_TABLES
            }
            return Snapshot(
                case=case.model_dump(),
                events=tuple(tuple(e.model_dump().values()) for e in events),
                facts=counts,
            )

        return self.read(take)

    def clinician_licensed_only_in(self, state: str) -> Actor:
        """Another clinician, licensed in ``state`` alone."""
        return add_user(self.engine, f"clinician-{state}", "clinician", (state,))

    # -- cases and triggers --------------------------------------------------

    def open_case(self, patient_state: str = "CA", patient_ref: str | None = None) -> int:
        ref = patient_ref or f"patient-{next(self._patients)}"
        data = CaseCreate(patient_ref=ref, patient_state=patient_state)
        return self.call(cases.create_case, data=data, actor=self.coordinator).id

    def fire(
        self,
        case_id: int,
        trigger: str,
        actor: Actor | None = None,
        body: TransitionBody | None = None,
        **kwargs: Any,
    ) -> Case:
        """Fire ``trigger`` as the clinician (who may fire every trigger) by default."""
        return self.call(
            cases.fire_trigger,
            case_id=case_id,
            trigger=trigger,
            actor=actor or self.clinician,
            body=body if body is not None else body_for(trigger),
            **kwargs,
        )

    # -- facts ---------------------------------------------------------------

    def history(self, case_id: int, actor: Actor | None = None, **overrides: Any) -> History:
        """An eligible history, as the clinician (who alone judges ``insomnia_mood_driven``)."""
        data = HistoryIn(**(ELIGIBLE_HISTORY | overrides))
        return self.call(
            patient.put_history, case_id=case_id, data=data, actor=actor or self.clinician
        )

    def profile(self, case_id: int, actor: Actor | None = None, **overrides: Any) -> Profile:
        """An adult, neither pregnant nor breastfeeding, as the clinician (who may write it
        on an approved case too)."""
        data = ProfileIn(**(ELIGIBLE_PROFILE | overrides))
        return self.call(
            patient.put_profile, case_id=case_id, data=data, actor=actor or self.clinician
        )

    def consent(self, case_id: int, version: str = "2026-1", **kwargs: Any) -> Consent:
        data = ConsentCreate(version=version, signed_at=self.now, method="electronic")
        actor = kwargs.pop("actor", self.coordinator)
        return self.call(patient.record_consent, case_id=case_id, data=data, actor=actor, **kwargs)

    def assess(
        self,
        case_id: int,
        instrument: Instrument,
        score: int,
        *,
        days_ago: float = 0,
        item9: int | None = None,
        taken_at: datetime | None = None,
        actor: Actor | None = None,
    ) -> Assessment:
        if item9 is None and instrument == "phq9":
            item9 = 0  # a PHQ-9 always carries item 9 (SPEC.md 4.2); tests that care pass it
        data = AssessmentCreate(
            instrument=instrument,
            score=score,
            item9=item9,
            taken_at=taken_at or self.now - timedelta(days=days_ago),
        )
        return self.call(
            records.record_assessment, case_id=case_id, data=data, actor=actor or self.coordinator
        )

    def vital(
        self, case_id: int, systolic: int = 120, diastolic: int = 80, *, days_ago: float = 0
    ) -> Vital:
        data = VitalCreate(
            systolic=systolic, diastolic=diastolic, taken_at=self.now - timedelta(days=days_ago)
        )
        return self.call(records.record_vital, case_id=case_id, data=data, actor=self.coordinator)

    def add_med(self, case_id: int, name: str) -> Medication:
        data = MedicationCreate(name=name, dose="1 tablet", frequency="daily")
        return self.call(
            medications.add_medication, case_id=case_id, data=data, actor=self.coordinator
        )

    def set_med_status(
        self,
        case_id: int,
        medication_id: int | None,
        status: MedicationStatus,
        actor: Actor | None = None,
        stopped_on: date | None = None,
    ) -> Medication:
        return self.call(
            medications.update_medication,
            case_id=case_id,
            medication_id=medication_id,
            data=MedicationUpdate(status=status, stopped_on=stopped_on),
            actor=actor or self.coordinator,
        )

    def screen(self, case_id: int, actor: Actor | None = None) -> InteractionScreening:
        return self.call(
            medications.screen_interactions,
            case_id=case_id,
            data=ScreeningCreate(notes="Reviewed."),
            actor=actor or self.clinician,
        )

    def plan_taper(
        self, case_id: int, medication_id: int | None, actor: Actor | None = None
    ) -> Taper:
        assert medication_id is not None
        data = TaperCreate(medication_id=medication_id, plan="Halve the dose weekly.")
        return self.call(
            medications.plan_taper, case_id=case_id, data=data, actor=actor or self.clinician
        )

    def confirm_taper(
        self,
        case_id: int,
        taper_id: int,
        last_dose_on: date | None = None,
        actor: Actor | None = None,
    ) -> Taper:
        if last_dose_on is None:
            # Yesterday, unless the taper was planned today: a medication still taken
            # when its taper was planned was last taken no earlier than that day.
            last_dose_on = self.now.date() - timedelta(days=1)
            planned = [t for t in self.rows(Taper, case_id) if t.id == taper_id]
            if planned:
                last_dose_on = max(last_dose_on, planned[0].created_at.date())
        data = TaperConfirm(last_dose_on=last_dose_on)
        return self.call(
            medications.confirm_taper,
            case_id=case_id,
            taper_id=taper_id,
            data=data,
            actor=actor or self.clinician,
        )

    def emergency_contact(self, case_id: int) -> EmergencyContact:
        data = EmergencyContactCreate(name="Sam Rivera", relationship="spouse", phone="555-0100")
        return self.call(
            contacts.add_emergency_contact, case_id=case_id, data=data, actor=self.coordinator
        )

    def monitor(self, case_id: int, **overrides: Any) -> Monitor:
        """Register a treatment monitor; the case's first one is its default monitor."""
        fields: dict[str, Any] = {
            "name": "Alex Rivera",
            "relationship": "sibling",
            "phone": "555-0101",
            "adult_attested": True,
            "trained_on": self.now.date() - timedelta(days=3),
        }
        data = MonitorCreate(**(fields | overrides))
        monitor = self.call(
            contacts.add_monitor, case_id=case_id, data=data, actor=self.coordinator
        )
        self.monitors.setdefault(case_id, monitor.id)
        return monitor

    def set_monitor_active(self, case_id: int, monitor_id: int, active: bool) -> Monitor:
        return self.call(
            contacts.update_monitor,
            case_id=case_id,
            monitor_id=monitor_id,
            data=MonitorUpdate(active=active),
            actor=self.coordinator,
        )

    def people(self, case_id: int) -> None:
        """An emergency contact and a treatment monitor: what every dose needs."""
        self.emergency_contact(case_id)
        self.monitor(case_id)

    def clearance(
        self,
        case_id: int,
        systolic: int = 120,
        diastolic: int = 80,
        monitor_id: int | None = None,
        **kwargs: Any,
    ) -> DoseClearance:
        """A clearance requested now with the case's monitor (or ``monitor_id``)."""
        data = ClearanceCreate(
            systolic=systolic,
            diastolic=diastolic,
            monitor_id=monitor_id or self.monitors.get(case_id, 999),
        )
        return self.call(
            dosing.request_clearance,
            case_id=case_id,
            data=data,
            actor=kwargs.pop("actor", self.coordinator),
            **kwargs,
        )

    def cancel(self, case_id: int, clearance_id: int, actor: Actor | None = None) -> DoseClearance:
        return self.call(
            dosing.cancel_clearance,
            case_id=case_id,
            clearance_id=clearance_id,
            data=ClearanceCancel(reason="The dose was not taken."),
            actor=actor or self.coordinator,
        )

    def session(
        self,
        case_id: int,
        kind: SessionKind,
        *,
        completed_at: datetime | None = None,
        **fields: Any,
    ) -> CareSession:
        data = SessionCreate(kind=kind, completed_at=completed_at or self.now, **fields)
        return self.call(dosing.record_session, case_id=case_id, data=data, actor=self.coordinator)

    def dosing_fields(self, case_id: int, cleared_at: datetime, **overrides: Any) -> dict:
        """A clean dose record for a clearance granted at ``cleared_at``: the dose 15 minutes
        later, a post-dose reading 30 minutes after the dose, completed at +2 h 30."""
        dosed_at = overrides.get("dosed_at") or cleared_at + DOSED_AFTER
        fields: dict[str, Any] = {
            "dosed_at": dosed_at,
            "dose_mg": 100.0,
            "units_taken": 1,
            "monitor_id": self.monitors.get(case_id, 999),
            "post_systolic": 124,
            "post_diastolic": 80,
            "post_taken_at": dosed_at + POST_AFTER,
            "completed_at": dosed_at + COMPLETED_AFTER,
        }
        return fields | overrides

    def dose(self, case_id: int, *, rules: Settings | None = None, **overrides: Any) -> CareSession:
        """A granted clearance now (judged by ``rules``, if given), and the clean dose that
        uses it, recorded at its completion."""
        clearance = self.clearance(case_id, **({"rules": rules} if rules else {}))
        assert clearance.granted, clearance.unmet
        fields = self.dosing_fields(case_id, clearance.created_at, **overrides)
        self.now = max(self.now, fields["completed_at"])
        return self.session(case_id, "dosing", clearance_id=clearance.id, **fields)

    def adverse_event(
        self,
        case_id: int,
        kind: AdverseEventKind = "nausea",
        severity: Severity = "mild",
        *,
        onset_at: datetime | None = None,
        actor: Actor | None = None,
    ) -> AdverseEvent:
        data = AdverseEventCreate(
            kind=kind, severity=severity, description="Reported by phone.", onset_at=onset_at
        )
        return self.call(
            records.record_adverse_event,
            case_id=case_id,
            data=data,
            actor=actor or self.coordinator,
        )

    def safety_plan(
        self,
        case_id: int,
        *,
        risk_level: RiskLevel = "low",
        means_secured: bool = True,
        reviewed_at: datetime | None = None,
        actor: Actor | None = None,
    ) -> SafetyPlan:
        """A safety plan reviewed with the patient (now, by default) by the clinician."""
        data = SafetyPlanCreate(
            plan="Crisis line, remove means, monitor stays overnight; review in a week.",
            reviewed_with_patient_at=reviewed_at or self.now,
            risk_level=risk_level,
            means_secured=means_secured,
        )
        return self.call(
            records.record_safety_plan,
            case_id=case_id,
            data=data,
            actor=actor or self.clinician,
        )

    def resolve(self, case_id: int, event_id: int, actor: Actor | None = None) -> AdverseEvent:
        return self.call(
            records.resolve_adverse_event,
            case_id=case_id,
            event_id=event_id,
            data=AdverseEventResolve(note="Reviewed with the patient."),
            actor=actor or self.clinician,
        )

    # -- the controlled-substance record ---------------------------------------

    def units(self, case_id: int) -> int:
        """The case's units on hand, as the API shows them."""
        return self.read(lambda s: cases.units_on_hand(s, [case_id])[case_id])

    def refill(self, case_id: int, quantity_units: int = 8, actor: Actor | None = None) -> Dispense:
        """A refill dispensed by the clinician (not yet received)."""
        data = DispenseCreate(quantity_units=quantity_units, lot="LOT-2026-B2")
        return self.call(
            substance.record_dispense, case_id=case_id, data=data, actor=actor or self.clinician
        )

    def receive(
        self,
        case_id: int,
        dispense_id: int | None,
        at: datetime | None = None,
        actor: Actor | None = None,
    ) -> Dispense:
        """The patient received the dispense (now, by default), told by the coordinator."""
        assert dispense_id is not None
        return self.call(
            substance.receive_dispense,
            case_id=case_id,
            dispense_id=dispense_id,
            data=ReceiptCreate(received_at=at or self.now),
            actor=actor or self.coordinator,
        )

    def count(
        self,
        case_id: int,
        units_counted: int,
        at: datetime | None = None,
        actor: Actor | None = None,
    ) -> MedicationCount:
        data = CountCreate(units_counted=units_counted, counted_at=at or self.now)
        return self.call(
            substance.record_count, case_id=case_id, data=data, actor=actor or self.coordinator
        )

    def give_back(
        self,
        case_id: int,
        units: int,
        kind: ReturnKind = "returned",
        witness: str | None = "Sam Rivera",
        actor: Actor | None = None,
    ) -> MedicationReturn:
        """Units returned (or disposed of, or lost), seen by the treatment monitor."""
        data = ReturnCreate(units=units, kind=kind, witness=witness)
        return self.call(
            substance.record_return, case_id=case_id, data=data, actor=actor or self.coordinator
        )

    def reconcile(self, case_id: int) -> None:
        """Every unit still at home returned, so the case may be discharged."""
        units = self.units(case_id)
        if units:
            self.give_back(case_id, units)

    # -- bringing a case to a state -------------------------------------------

    def make_eligible(
        self,
        case_id: int,
        *,
        history: dict[str, Any] | None = None,
        profile: dict[str, Any] | None = None,
        scores: dict[Instrument, int] | None = None,
        days_ago: dict[Instrument, float] | None = None,
        vital: tuple[int, int] = (120, 80),
        vital_days_ago: float = 1,
        meds: tuple[str, ...] = (),
        consent: str | None = "2026-1",
    ) -> list[Medication]:
        """Record everything ``approve`` needs; each argument changes one fact."""
        self.history(case_id, **(history or {}))
        self.profile(case_id, **(profile or {}))
        if consent is not None:
            self.consent(case_id, consent)
        ages: dict[Instrument, float] = {"phq9": 1, "gad7": 1, "isi": 1}
        ages |= days_ago or {}
        for instrument, score in (ELIGIBLE_SCORES | (scores or {})).items():
            self.assess(case_id, instrument, score, days_ago=ages[instrument])
        self.vital(case_id, *vital, days_ago=vital_days_ago)
        added = [self.add_med(case_id, name) for name in meds]
        for medication in added:
            if medication.drug_class in ("benzodiazepine", "z_drug"):
                self.plan_taper(case_id, medication.id)
        self.screen(case_id)
        return added

    def ready_to_prescribe(self, case_id: int) -> None:
        """Confirm every open taper, wait out the washouts, then screen the list again.

        The wait outlasts ``recent_window_days``, so a current PHQ-9, ISI and
        blood pressure are recorded again after it.
        """
        open_tapers = [t for t in self.rows(Taper, case_id) if t.confirmed_at is None]
        for taper in open_tapers:
            self.confirm_taper(case_id, taper.id)
        if open_tapers:
            self.tick(days=WASHOUT_WAIT_DAYS)
            for instrument in ("phq9", "isi"):
                self.assess(case_id, instrument, ELIGIBLE_SCORES[instrument])
            self.vital(case_id)
            self.screen(case_id)

    def complete_sessions(self, case_id: int) -> None:
        """Preparation, a cleared dose, and integration after it.

        A benzodiazepine or Z-drug tapered yesterday must wash out before a dose is
        cleared (``taper.washout``): the clock moves on 8 days first.
        """
        if any(t.confirmed_at is not None for t in self.rows(Taper, case_id)):
            self.tick(days=8)
        self.session(case_id, "preparation")
        self.tick(minutes=10)
        self.dose(case_id)
        self.tick(minutes=30)
        self.session(case_id, "integration")

    def case_in(
        self, state: str, *, held_from: str = INITIAL, prepared: bool = True, **eligible: Any
    ) -> int:
        """A new case brought to ``state`` through the real services.

        With ``prepared`` the guards of every trigger leaving ``state`` are met;
        ``eligible`` is passed to ``make_eligible`` (say, ``meds=("Xanax",)``).
        """
        if state == INITIAL:
            case_id = self.open_case()
        elif state == "on_hold":
            case_id = self.case_in(held_from, **eligible)
            self.fire(case_id, "hold")
        else:
            previous, trigger = ROUTE[state]
            case_id = self.case_in(previous, **eligible)
            if trigger == "discharge":
                self.reconcile(case_id)
            self.fire(case_id, trigger)
            if state == "integration":
                self.people(case_id)
        if prepared and state in PREPARE:
            step = getattr(self, PREPARE[state])
            if state == INITIAL:
                step(case_id, **eligible)
            else:
                step(case_id)
        return case_id


@pytest.fixture
def engine(engine: Engine) -> Engine:
    """The shared ``engine``; on PostgreSQL, commits here do not wait for the disk.

    Visibility and locking are unchanged (the concurrency tests still hold);
    only durability across a server crash is given up, which a throwaway test
    database does not need. It makes the PostgreSQL run about three times faster.
    """
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _no_synchronous_commit)
    return engine


def _no_synchronous_commit(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    dbapi_connection.commit()


@pytest.fixture
def clinic(engine, clinician, coordinator, now) -> Clinic:
    """The clinic: a licensed clinician (CA, NY), a coordinator, and a clock at ``now``."""
    return Clinic(engine=engine, clinician=clinician, coordinator=coordinator, now=now)


@pytest.fixture
def case_in(clinic) -> Callable[..., int]:
    """``case_in(state, held_from=..., prepared=..., **eligible)``: see ``Clinic.case_in``."""
    return clinic.case_in
