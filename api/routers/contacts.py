"""Emergency contacts and treatment monitors: personal data, returned to staff, never logged."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CaseId, CaseWrite, CurrentActor, RecordId, SessionDep, write_responses
from api.problems import problem_responses
from api.queries import Cursor, Limit, records_page
from api.routing import ThreadedRoute
from api.schemas import Page
from models.facts import EmergencyContact, Monitor
from models.schemas import EmergencyContactCreate, MonitorCreate, MonitorUpdate
from workflow import contacts

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/cases/{case_id}",
    tags=["contacts and monitors"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.post("/emergency-contacts", status_code=201, responses=write_responses(201))
def add_emergency_contact(data: EmergencyContactCreate, write: CaseWrite) -> EmergencyContact:
    """Record an emergency contact (a dose clearance needs one)."""
    return write(contacts.add_emergency_contact, data=data)


@router.get("/emergency-contacts")
def list_emergency_contacts(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[EmergencyContact]:
    """A page of the case's emergency contacts, oldest first."""
    return records_page(session, EmergencyContact, "emergency-contacts", case_id, limit, cursor)


@router.post("/monitors", status_code=201, responses=write_responses(201))
def add_monitor(data: MonitorCreate, write: CaseWrite) -> Monitor:
    """Register a treatment monitor: an adult (`adult_attested` true) who stays with the
    patient through each dose, trained on `trained_on` (not in the future)."""
    return write(contacts.add_monitor, data=data)


@router.get("/monitors")
def list_monitors(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Monitor]:
    """A page of the case's treatment monitors, oldest first."""
    return records_page(session, Monitor, "monitors", case_id, limit, cursor)


@router.patch("/monitors/{monitor_id}", responses=write_responses(200))
def update_monitor(monitor_id: RecordId, data: MonitorUpdate, write: CaseWrite) -> Monitor:
    """Make a monitor active or inactive (200); making one inactive voids the open
    clearances that name it."""
    return write(contacts.update_monitor, monitor_id=monitor_id, data=data)
