"""A case's audit trail."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CaseId, CurrentActor, SessionDep
from api.problems import problem_responses
from api.schemas import EventPublic
from workflow.audit import list_events

router = APIRouter(
    prefix="/api/v1/cases/{case_id}/events",
    tags=["events"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.get("")
def get_events(actor: CurrentActor, case_id: CaseId, session: SessionDep) -> list[EventPublic]:
    """Every accepted write to the case, oldest first."""
    return [EventPublic.model_validate(e) for e in list_events(session, case_id)]
