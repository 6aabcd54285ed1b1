"""A case's audit trail."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CaseId, CurrentActor, SessionDep
from api.problems import problem_responses
from api.queries import Cursor, Limit, records_page
from api.routing import ThreadedRoute
from api.schemas import ChainVerdict, EventPublic, Page
from models.tables import AuditEvent
from workflow.audit_chain import verify_case
from workflow.cases import get_case

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/cases/{case_id}/events",
    tags=["events"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.get("")
def get_events(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[EventPublic]:
    """A page of the accepted writes to the case, oldest first."""
    page = records_page(session, AuditEvent, "events", case_id, limit, cursor)
    items = [EventPublic.model_validate(e) for e in page["items"]]
    return Page[EventPublic](items=items, next_cursor=page["next_cursor"])


@router.get("/verify", response_model_exclude_none=True)
def verify_events(actor: CurrentActor, case_id: CaseId, session: SessionDep) -> ChainVerdict:
    """Check the case's hash chain: does every event still chain to the one before it?"""
    verdict = verify_case(session, get_case(session, case_id))
    return ChainVerdict.model_validate(verdict.as_dict())
