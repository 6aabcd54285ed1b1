"""Recording facts on a case: the simple facts, and reading facts back.

Every write goes through ``workflow.unit`` (``writes``): it locks the case,
checks ``If-Match``, bumps the case's version, appends one audit event and
tells the hook, in one transaction. History, profile and consent are in
``workflow.patient``; medications, screenings and tapers in
``workflow.medications``; dose clearances and sessions in ``workflow.dosing``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, SQLModel, select

from models.facts import (
    AdverseEvent,
    Assessment,
    CareSession,
    Consent,
    Dispense,
    DoseClearance,
    EmergencyContact,
    InteractionScreening,
    Medication,
    MedicationCount,
    MedicationReturn,
    Monitor,
    SafetyPlan,
    Taper,
    Vital,
)
from models.schemas import (
    AdverseEventCreate,
    AdverseEventResolve,
    AssessmentCreate,
    SafetyPlanCreate,
    VitalCreate,
)
from models.settings import settings
from models.tables import Case
from workflow import safety
from workflow.cases import get_case
from workflow.dose_guards import is_crisis
from workflow.errors import Conflict, NotFound, ValidationFailed
from workflow.unit import CaseWrite, writes

COLLECTIONS: dict[str, type[SQLModel]] = {
    "consents": Consent,
    "assessments": Assessment,
    "medications": Medication,
    "interaction-screenings": InteractionScreening,
    "tapers": Taper,
    "vitals": Vital,
    "dose-clearances": DoseClearance,
    "sessions": CareSession,
    "adverse-events": AdverseEvent,
    "safety-plans": SafetyPlan,
    "emergency-contacts": EmergencyContact,
    "monitors": Monitor,
    "dispenses": Dispense,
    "medication-counts": MedicationCount,
    "medication-returns": MedicationReturn,
}


def not_future(value: datetime, now: datetime, field: str, case: Case | None = None) -> datetime:
    """``value``, unless it lies in the future (beyond the allowed clock skew).

    With ``case``, ``value`` is a fact's own time: it may not be more than
    ``fact_max_age_days`` before the case was created either.
    """
    if value > now + timedelta(seconds=settings.clock_skew_seconds):
        raise ValidationFailed.field((field,), f"{field} is in the future.")
    if case is not None and value < case.created_at - timedelta(days=settings.fact_max_age_days):
        raise ValidationFailed.field(
            (field,), f"{field} is more than {settings.fact_max_age_days:g} days before the case."
        )
    return value


def get_record(session: Session, case_id: int, model: type[Any], record_id: int) -> Any:
    """The record ``record_id`` of ``model`` on this case, or NotFound."""
    record = session.get(model, record_id)
    if record is None or record.case_id != case_id:
        raise NotFound(f"There is no {model.__name__} {record_id} on case {case_id}.")
    return record


def list_records(session: Session, *, case_id: int, collection: str) -> list[Any]:
    """A collection of the case's facts, oldest first (``collection`` as in the URL)."""
    get_case(session, case_id)
    model: Any = COLLECTIONS[collection]
    query = select(model).where(model.case_id == case_id).order_by(model.id)
    return list(session.exec(query).all())


@writes("assessment")
def record_assessment(write: CaseWrite, *, data: AssessmentCreate) -> Assessment:
    """Record a PHQ-9, GAD-7 or ISI, and apply the safety rules to it."""
    not_future(data.taken_at, write.now, "taken_at", write.case)
    assessment = Assessment(case_id=write.case_id, created_at=write.now, **data.model_dump())
    write.record("assessment", assessment)
    safety.after_assessment(write, assessment)
    return assessment


@writes("vital")
def record_vital(write: CaseWrite, *, data: VitalCreate) -> Vital:
    """Record a blood-pressure reading; one at or above the crisis limit is an adverse event."""
    not_future(data.taken_at, write.now, "taken_at", write.case)
    vital = Vital(case_id=write.case_id, created_at=write.now, **data.model_dump())
    write.record("vital", vital)
    if is_crisis(vital.systolic, vital.diastolic, write.rules):
        safety.record_system_event(
            write,
            kind="blood_pressure_increase",
            severity="severe",
            description=(
                f"Blood pressure {vital.systolic}/{vital.diastolic} at or above the crisis "
                f"limit (vitals #{vital.id})."
            ),
        )
    return vital


@writes("adverse_event")
def record_adverse_event(write: CaseWrite, *, data: AdverseEventCreate) -> AdverseEvent:
    """Record an adverse event; a serious one puts the case on hold at once (SPEC.md 4.6)."""
    onset_at = data.onset_at or write.now
    not_future(onset_at, write.now, "onset_at", write.case)
    fields = data.model_dump(exclude={"onset_at"})
    event = AdverseEvent(case_id=write.case_id, created_at=write.now, onset_at=onset_at, **fields)
    write.record("adverse_event", event)
    safety.hold_if_needed(write, event)
    return event


@writes("adverse_event_resolve")
def resolve_adverse_event(
    write: CaseWrite, *, event_id: int, data: AdverseEventResolve
) -> AdverseEvent:
    """A clinician resolves an adverse event."""
    event = get_record(write.session, write.case_id, AdverseEvent, event_id)
    if event.resolved_at is not None:
        raise Conflict(f"Adverse event {event_id} is already resolved.")
    event.resolved_at, event.resolved_by, event.resolution_note = (
        write.now,
        write.actor.id,
        data.note,
    )
    write.record("adverse_event_resolve", event)
    return event


@writes("safety_plan")
def record_safety_plan(write: CaseWrite, *, data: SafetyPlanCreate) -> SafetyPlan:
    """A clinician records the safety plan and suicide-risk assessment reviewed with the
    patient: what ``safety.reassessed`` reads before a case resumes (SPEC.md 4.6)."""
    not_future(data.reviewed_with_patient_at, write.now, "reviewed_with_patient_at", write.case)
    plan = SafetyPlan(
        case_id=write.case_id, recorded_by=write.actor.id, created_at=write.now, **data.model_dump()
    )
    write.record("safety_plan", plan)
    return plan
