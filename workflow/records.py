"""Recording facts on a case: the simple facts, and reading facts back.

Every write goes through ``workflow.unit`` (``writes``): it locks the case,
checks ``If-Match``, bumps the case's version, appends one audit event and
tells the hook, in one transaction. Medications, screenings and tapers are
in ``workflow.medications``; dose clearances and sessions in
``workflow.dosing``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, SQLModel, select

from models.facts import (
    AdverseEvent,
    Assessment,
    CareSession,
    DoseClearance,
    EmergencyContact,
    History,
    InteractionScreening,
    Medication,
    Monitor,
    Taper,
    Vital,
)
from models.schemas import (
    AdverseEventCreate,
    AdverseEventResolve,
    AssessmentCreate,
    HistoryIn,
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
    "assessments": Assessment,
    "medications": Medication,
    "interaction-screenings": InteractionScreening,
    "tapers": Taper,
    "vitals": Vital,
    "dose-clearances": DoseClearance,
    "sessions": CareSession,
    "adverse-events": AdverseEvent,
    "emergency-contacts": EmergencyContact,
    "monitors": Monitor,
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


def get_history(session: Session, *, case_id: int) -> History:
    """The case's clinical history, or NotFound."""
    get_case(session, case_id)
    history = session.exec(select(History).where(History.case_id == case_id)).first()
    if history is None:
        raise NotFound(f"No history has been recorded on case {case_id}.")
    return history


@writes("history")
def put_history(write: CaseWrite, *, data: HistoryIn) -> History:
    """Record or replace the clinical history."""
    history = write.facts.history
    if history is None:
        history = History(case_id=write.case_id, created_at=write.now, **data.model_dump())
    else:
        for name, value in data.model_dump().items():
            setattr(history, name, value)
    history.updated_at = write.now
    write.record("history", history)
    return history


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
    """Record an adverse event; a serious one puts the case on hold at once."""
    event = AdverseEvent(case_id=write.case_id, created_at=write.now, **data.model_dump())
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
