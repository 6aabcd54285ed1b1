"""Pre-dose clearances and treatment sessions."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CaseId, CaseWrite, CurrentActor, SessionDep, write_responses
from api.problems import problem_responses
from api.queries import Cursor, Limit, records_page
from api.routing import ThreadedRoute
from api.schemas import Page
from models.facts import CareSession, DoseClearance
from models.schemas import ClearanceCreate, SessionCreate
from workflow import dosing

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/cases/{case_id}",
    tags=["dosing"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.post("/dose-clearances", status_code=201, responses=write_responses(201))
def request_clearance(data: ClearanceCreate, write: CaseWrite) -> DoseClearance:
    """Check a pre-dose reading: `granted`, or not with the `unmet` reasons (201 either way)."""
    return write(dosing.request_clearance, data=data)


@router.get("/dose-clearances")
def list_clearances(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DoseClearance]:
    """A page of the case's dose clearances, oldest first."""
    return records_page(session, DoseClearance, "dose-clearances", case_id, limit, cursor)


@router.post("/sessions", status_code=201, responses=write_responses(201))
def record_session(data: SessionCreate, write: CaseWrite) -> CareSession:
    """Record a completed session; a dosing one names the granted clearance it used."""
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
