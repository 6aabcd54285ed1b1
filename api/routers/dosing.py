"""The dosing cycle: dose clearances, their cancellation, and sessions (the dose record)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CaseId, CaseWrite, CurrentActor, RecordId, SessionDep, write_responses
from api.problems import problem_responses
from api.queries import Cursor, Limit, records_page
from api.routing import ThreadedRoute
from api.schemas import Page
from models.facts import CareSession, DoseClearance
from models.schemas import ClearanceCancel, ClearanceCreate, SessionCreate
from workflow import dosing

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/cases/{case_id}",
    tags=["dosing"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.post("/dose-clearances", status_code=201, responses=write_responses(201))
def request_clearance(data: ClearanceCreate, write: CaseWrite) -> DoseClearance:
    """Judge a pre-dose reading with its treatment monitor: `granted` (valid for
    `clearance_valid_minutes`, open until used, cancelled or void), or not, with every unmet
    requirement in `unmet` (201 either way)."""
    return write(dosing.request_clearance, data=data)


@router.get("/dose-clearances")
def list_clearances(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DoseClearance]:
    """A page of the case's dose clearances, oldest first, each `open` or `void`."""
    return records_page(session, DoseClearance, "dose-clearances", case_id, limit, cursor)


@router.post("/dose-clearances/{clearance_id}/cancel", responses=write_responses(200))
def cancel_clearance(
    clearance_id: RecordId, data: ClearanceCancel, write: CaseWrite
) -> DoseClearance:
    """Cancel an open clearance whose dose was not taken (200); one not open is a 409."""
    return write(dosing.cancel_clearance, clearance_id=clearance_id, data=data)


@router.post("/sessions", status_code=201, responses=write_responses(201))
def record_session(data: SessionCreate, write: CaseWrite) -> CareSession:
    """Record a completed session. A dosing one is the dose record: a dose taken outside
    the rules is still recorded, with its `deviations` and an adverse event for review; a
    malformed one is a 422 and stores nothing."""
    return write(dosing.record_session, data=data)


@router.get("/sessions")
def list_sessions(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[CareSession]:
    """A page of the case's sessions, oldest first."""
    return records_page(session, CareSession, "sessions", case_id, limit, cursor)
