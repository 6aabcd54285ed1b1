"""The evaluation's facts: history, profile, consent, assessments (PHQ-9, GAD-7, ISI), vitals."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CaseId, CaseWrite, CurrentActor, SessionDep, write_responses
from api.problems import problem_responses
from api.queries import Cursor, Limit, records_page
from api.routing import ThreadedRoute
from api.schemas import Page
from models.facts import Assessment, Consent, History, Profile, Vital
from models.schemas import AssessmentCreate, ConsentCreate, HistoryIn, ProfileIn, VitalCreate
from workflow import patient, records

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/cases/{case_id}",
    tags=["evaluation facts"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.put("/history", responses=write_responses(200))
def put_history(data: HistoryIn, write: CaseWrite) -> History:
    """Record or replace the clinical history (200).

    Only a clinician sets `insomnia_mood_driven` true, and once the case is
    approved only a clinician writes the history. On an approved case, a change
    that newly fails a contraindication records a severe adverse event, which
    holds the case."""
    return write(patient.put_history, data=data)


@router.get("/history")
def get_history(actor: CurrentActor, case_id: CaseId, session: SessionDep) -> History:
    """The clinical history; 404 until it is recorded."""
    return patient.get_history(session, case_id=case_id)


@router.put("/profile", responses=write_responses(200))
def put_profile(data: ProfileIn, write: CaseWrite) -> Profile:
    """Record or replace the patient profile (200).

    Once the case is approved only a clinician writes it; a change that newly
    fails a contraindication records a severe adverse event, which holds the case."""
    return write(patient.put_profile, data=data)


@router.get("/profile")
def get_profile(actor: CurrentActor, case_id: CaseId, session: SessionDep) -> Profile:
    """The patient profile; 404 until it is recorded."""
    return patient.get_profile(session, case_id=case_id)


@router.post("/consents", status_code=201, responses=write_responses(201))
def record_consent(data: ConsentCreate, write: CaseWrite) -> Consent:
    """Record the patient's signed consent; only the current version counts for dosing."""
    return write(patient.record_consent, data=data)


@router.get("/consents")
def list_consents(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Consent]:
    """A page of the case's consents, oldest first."""
    return records_page(session, Consent, "consents", case_id, limit, cursor)


@router.post("/assessments", status_code=201, responses=write_responses(201))
def record_assessment(data: AssessmentCreate, write: CaseWrite) -> Assessment:
    """Record a PHQ-9 (with its item 9), GAD-7 or ISI; a PHQ-9 item 9 of 1+ records
    suicidal ideation."""
    return write(records.record_assessment, data=data)


@router.get("/assessments")
def list_assessments(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Assessment]:
    """A page of the case's assessments, oldest first."""
    return records_page(session, Assessment, "assessments", case_id, limit, cursor)


@router.post("/vitals", status_code=201, responses=write_responses(201))
def record_vital(data: VitalCreate, write: CaseWrite) -> Vital:
    """Record a blood-pressure reading."""
    return write(records.record_vital, data=data)


@router.get("/vitals")
def list_vitals(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Vital]:
    """A page of the case's blood-pressure readings, oldest first."""
    return records_page(session, Vital, "vitals", case_id, limit, cursor)
