"""What a case can do next, and doing it."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import (
    CaseId,
    CaseWrite,
    CurrentActor,
    Now,
    SessionDep,
    TriggerName,
    write_responses,
)
from api.problems import problem_responses
from api.routing import ThreadedRoute
from api.schemas import CasePublic, TriggerOptionPublic
from models.schemas import TransitionBody
from workflow import cases

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/cases/{case_id}/transitions",
    tags=["transitions"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.get("")
def list_transitions(
    actor: CurrentActor, case_id: CaseId, session: SessionDep, now: Now
) -> list[TriggerOptionPublic]:
    """Every trigger from the case's state: where it leads, who may fire it, what blocks it."""
    options = cases.list_triggers(session, case_id=case_id, actor=actor, now=now)
    return [TriggerOptionPublic.model_validate(o) for o in options]


@router.post(
    "/{trigger}",
    responses=write_responses(200),
)
def fire_transition(
    write: CaseWrite, trigger: TriggerName, body: TransitionBody | None = None
) -> CasePublic:
    """Fire a trigger; 409 `transition_blocked` lists every unmet requirement."""
    return write.case(cases.fire_trigger, trigger=trigger, body=body)
