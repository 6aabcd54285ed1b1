"""Cases: open one, list them, read one, assign it, and record a patient's move."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import (
    ETAG_HEADER,
    CaseId,
    CaseWrite,
    CurrentActor,
    EngineDep,
    Now,
    SessionDep,
    etag,
    write_responses,
)
from api.problems import problem_responses
from api.queries import (
    CaseAssignee,
    Cursor,
    Limit,
    assignee_id,
    choice,
    decode_cursor,
    encode_cursor,
    one_of,
)
from api.routing import ThreadedRoute
from api.schemas import CasePage, CasePublic
from models.schemas import PATIENT_REF_PATTERN, CaseAssignment, CaseCreate, CaseUpdate
from models.tables import Case
from workflow import cases
from workflow.definition import PHASES, STATES
from workflow.unit import write_transaction

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/cases",
    tags=["cases"],
    responses=problem_responses(401, 422, 503),
)

STATE_NAMES = tuple(s.name for s in STATES)
PhaseFilter = Annotated[str | None, choice(PHASES, "Only cases in this phase."), one_of(PHASES)]
StateFilter = Annotated[
    str | None, choice(STATE_NAMES, "Only cases in this state."), one_of(STATE_NAMES)
]
PatientFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=PATIENT_REF_PATTERN,
        description="Only this patient's cases, open or closed: the exact reference, "
        "without regard to case.",
    ),
]


def case_response(case: Case, response: Response, units_on_hand: int = 0) -> CasePublic:
    """The case's public view, with its ETag set on ``response``."""
    response.headers["ETag"] = etag(case.version)
    return CasePublic.of(case, units_on_hand)


@router.post(
    "",
    status_code=201,
    responses={201: {"headers": ETAG_HEADER}, **problem_responses(403, 409)},
)
def create_case(
    actor: CurrentActor, data: CaseCreate, engine: EngineDep, now: Now, response: Response
) -> CasePublic:
    """Open a case in `evaluation`; a patient may have only one open case (else 409)."""
    with write_transaction(engine) as session:
        case = cases.create_case(session, data=data, actor=actor, now=now)
    return case_response(case, response)


@router.get("")
def list_cases(
    actor: CurrentActor,
    session: SessionDep,
    phase: PhaseFilter = None,
    state: StateFilter = None,
    patient_ref: PatientFilter = None,
    assignee: CaseAssignee = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CasePage:
    """A page of cases in id order, optionally of one phase or state, of one patient
    (`patient_ref`, without regard to case), or assigned to one user (`assignee`: `me` or a
    user id, as the clinician or the coordinator)."""
    rows, last = cases.list_cases(
        session,
        phase=phase,
        state=state,
        patient_ref=patient_ref,
        assignee=assignee_id(assignee, actor),
        limit=limit,
        after_id=decode_cursor("cases", cursor),
    )
    units = cases.units_on_hand(session, [c.id for c in rows if c.id is not None])
    items = [CasePublic.of(c, units.get(c.id or 0, 0)) for c in rows]
    return CasePage(items=items, next_cursor=encode_cursor("cases", last))


@router.get("/{case_id}", responses={200: {"headers": ETAG_HEADER}, **problem_responses(404)})
def get_case(
    actor: CurrentActor, case_id: CaseId, session: SessionDep, response: Response
) -> CasePublic:
    """One case, with its `ETag`."""
    case = cases.get_case(session, case_id)
    return case_response(case, response, cases.units_on_hand(session, [case_id])[case_id])


@router.patch("/{case_id}", responses={**write_responses(200), **problem_responses(404)})
def update_case(data: CaseUpdate, write: CaseWrite) -> CasePublic:
    """A clinician records that the patient moved to another state (`patient_state`); audited,
    and open dose clearances are void when it changes. Sending the same state again is
    audited with no change."""
    return write.case(cases.update_case, data=data)


@router.post("/{case_id}/assignment", responses={**write_responses(200), **problem_responses(404)})
def assign_case(data: CaseAssignment, write: CaseWrite) -> CasePublic:
    """Assign the case's clinician (`clinician_id`), its coordinator (`coordinator_id`), or
    both: each must be an active user of that role (422 naming the field otherwise). Audited
    as a fact; the case's open reminders go to the new assignees from now on."""
    return write.case(cases.assign_case, data=data)
