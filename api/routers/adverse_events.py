"""Adverse events: recorded by staff or by the service, resolved by clinicians."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import (
    CaseId,
    CaseWrite,
    CurrentActor,
    RecordId,
    SessionDep,
    write_responses,
)
from api.problems import problem_responses
from api.queries import Cursor, Limit, records_page
from api.routing import ThreadedRoute
from api.schemas import Page
from models.facts import AdverseEvent
from models.schemas import AdverseEventCreate, AdverseEventResolve
from workflow import records

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/cases/{case_id}/adverse-events",
    tags=["adverse events"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.post("", status_code=201, responses=write_responses(201))
def record_adverse_event(data: AdverseEventCreate, write: CaseWrite) -> AdverseEvent:
    """Record an adverse event; a severe one, or any respiratory depression or suicidal
    ideation, puts an active case on hold at once."""
    return write(records.record_adverse_event, data=data)


@router.get("")
def list_adverse_events(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AdverseEvent]:
    """A page of the case's adverse events, oldest first."""
    return records_page(session, AdverseEvent, "adverse-events", case_id, limit, cursor)


@router.post("/{event_id}/resolve", responses=write_responses(200))
def resolve_adverse_event(
    event_id: RecordId,
    data: AdverseEventResolve,
    write: CaseWrite,
) -> AdverseEvent:
    """A clinician resolves an adverse event (200)."""
    return write(records.resolve_adverse_event, event_id=event_id, data=data)
