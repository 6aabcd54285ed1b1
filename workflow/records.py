"""Recording facts on a case: the common write path, and the simple facts.

Every write locks the case, checks ``If-Match``, bumps the case's version,
appends one audit event and tells the hook, in the caller's transaction.
Medications, screenings and tapers are in ``workflow.medications``; dose
clearances and sessions in ``workflow.dosing``.
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
    History,
    InteractionScreening,
    Medication,
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
from workflow import hooks, safety
from workflow.audit import append_event, lock_case, record_id, save_case
from workflow.cases import get_case, require_role
from workflow.definition import Actor
from workflow.errors import Conflict, NotFound, ValidationFailed

COLLECTIONS: dict[str, type[SQLModel]] = {
    "assessments": Assessment,
    "medications": Medication,
    "interaction-screenings": InteractionScreening,
    "tapers": Taper,
    "vitals": Vital,
    "dose-clearances": DoseClearance,
    "sessions": CareSession,
    "adverse-events": AdverseEvent,
}


def open_write(
    session: Session, case_id: int, fact: str, actor: Actor, expected_version: int | None
) -> Case:
    """Check the actor may record ``fact``, then lock the case for the write."""
    require_role(actor, fact)
    return lock_case(session, case_id, expected_version)


def finish_write(
    session: Session,
    case: Case,
    actor: Actor,
    now: datetime,
    fact: str,
    record: SQLModel,
    **case_changes: Any,
) -> None:
    """Bump the case, append the write's audit event and tell the hook."""
    session.add(record)
    session.flush()
    save_case(session, case, now, **case_changes)
    append_event(
        session,
        case,
        actor,
        now,
        kind="fact",
        data={"fact": fact, "id": record_id(record), "record": record.model_dump(mode="json")},
    )
    hooks.fact(session, case, fact=fact, record=record, now=now)


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


def put_history(
    session: Session,
    *,
    case_id: int,
    data: HistoryIn,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> History:
    """Record or replace the clinical history."""
    case = open_write(session, case_id, "history", actor, expected_version)
    history = session.exec(select(History).where(History.case_id == case_id)).first()
    if history is None:
        history = History(case_id=case_id, created_at=now, **data.model_dump())
    else:
        for name, value in data.model_dump().items():
            setattr(history, name, value)
    history.updated_at = now
    finish_write(session, case, actor, now, "history", history)
    return history


def record_assessment(
    session: Session,
    *,
    case_id: int,
    data: AssessmentCreate,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> Assessment:
    """Record a PHQ-9, GAD-7 or ISI, and apply the safety rules to it."""
    case = open_write(session, case_id, "assessment", actor, expected_version)
    not_future(data.taken_at, now, "taken_at", case)
    assessment = Assessment(case_id=case_id, created_at=now, **data.model_dump())
    finish_write(session, case, actor, now, "assessment", assessment)
    safety.after_assessment(session, case, assessment, now)
    return assessment


def record_vital(
    session: Session,
    *,
    case_id: int,
    data: VitalCreate,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> Vital:
    """Record a blood-pressure reading."""
    case = open_write(session, case_id, "vital", actor, expected_version)
    not_future(data.taken_at, now, "taken_at", case)
    vital = Vital(case_id=case_id, created_at=now, **data.model_dump())
    finish_write(session, case, actor, now, "vital", vital)
    return vital


def record_adverse_event(
    session: Session,
    *,
    case_id: int,
    data: AdverseEventCreate,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> AdverseEvent:
    """Record an adverse event; a serious one puts the case on hold at once."""
    case = open_write(session, case_id, "adverse_event", actor, expected_version)
    event = AdverseEvent(case_id=case_id, created_at=now, **data.model_dump())
    finish_write(session, case, actor, now, "adverse_event", event)
    safety.hold_if_needed(session, case, event, now)
    return event


def resolve_adverse_event(
    session: Session,
    *,
    case_id: int,
    event_id: int,
    data: AdverseEventResolve,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> AdverseEvent:
    """A clinician resolves an adverse event."""
    case = open_write(session, case_id, "adverse_event_resolve", actor, expected_version)
    event = get_record(session, case_id, AdverseEvent, event_id)
    if event.resolved_at is not None:
        raise Conflict(f"Adverse event {event_id} is already resolved.")
    event.resolved_at, event.resolved_by, event.resolution_note = now, actor.id, data.note
    finish_write(session, case, actor, now, "adverse_event_resolve", event)
    return event
