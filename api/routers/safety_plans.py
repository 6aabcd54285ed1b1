"""Safety plans: a clinician's suicide-risk assessment, reviewed with the patient."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CaseId, CaseWrite, CurrentActor, SessionDep, write_responses
from api.problems import problem_responses
from api.queries import Cursor, Limit, records_page
from api.routing import ThreadedRoute
from api.schemas import Page
from models.facts import SafetyPlan
from models.schemas import SafetyPlanCreate
from workflow import records

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/cases/{case_id}/safety-plans",
    tags=["adverse events"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.post("", status_code=201, responses=write_responses(201))
def record_safety_plan(data: SafetyPlanCreate, write: CaseWrite) -> SafetyPlan:
    """A clinician records the safety plan reviewed with the patient and the suicide risk
    assessed; after suicidal ideation, `resume` needs one rated `low` (`safety.reassessed`)."""
    return write(records.record_safety_plan, data=data)


@router.get("")
def list_safety_plans(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[SafetyPlan]:
    """A page of the case's safety plans, oldest first."""
    return records_page(session, SafetyPlan, "safety-plans", case_id, limit, cursor)
