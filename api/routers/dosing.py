"""Pre-dose clearances and treatment sessions."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CaseId, CaseWrite, CurrentActor, SessionDep, write_responses
from api.problems import problem_responses
from models.facts import CareSession, DoseClearance
from models.schemas import ClearanceCreate, SessionCreate
from workflow import dosing, records

router = APIRouter(
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
    actor: CurrentActor, case_id: CaseId, session: SessionDep
) -> list[DoseClearance]:
    """Every dose clearance, newest last."""
    return records.list_records(session, case_id=case_id, collection="dose-clearances")


@router.post("/sessions", status_code=201, responses=write_responses(201))
def record_session(data: SessionCreate, write: CaseWrite) -> CareSession:
    """Record a completed session; a dosing one names the granted clearance it used."""
    return write(dosing.record_session, data=data)


@router.get("/sessions")
def list_sessions(actor: CurrentActor, case_id: CaseId, session: SessionDep) -> list[CareSession]:
    """Every session, newest last."""
    return records.list_records(session, case_id=case_id, collection="sessions")
