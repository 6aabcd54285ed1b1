"""A case's audit trail."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CaseId, CurrentActor, SessionDep
from api.problems import problem_responses
from api.schemas import ChainVerdict, EventPublic
from workflow.audit import list_events
from workflow.audit_chain import verify_case
from workflow.cases import get_case

router = APIRouter(
    prefix="/api/v1/cases/{case_id}/events",
    tags=["events"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.get("")
def get_events(actor: CurrentActor, case_id: CaseId, session: SessionDep) -> list[EventPublic]:
    """Every accepted write to the case, oldest first."""
    return [EventPublic.model_validate(e) for e in list_events(session, case_id)]


@router.get("/verify", response_model_exclude_none=True)
def verify_events(actor: CurrentActor, case_id: CaseId, session: SessionDep) -> ChainVerdict:
    """Check the case's hash chain: does every event still chain to the one before it?"""
    verdict = verify_case(session, get_case(session, case_id))
    return ChainVerdict.model_validate(verdict.as_dict())
