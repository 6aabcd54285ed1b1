"""Cases: open one, list them, read one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from api.deps import ETAG_HEADER, CaseId, CurrentActor, EngineDep, Now, SessionDep, etag
from api.problems import problem_responses
from api.queries import Cursor, Limit, choice, decode_cursor, encode_cursor, one_of
from api.schemas import CasePage, CasePublic
from models.schemas import CaseCreate
from models.tables import Case
from workflow import cases
from workflow.definition import PHASES, STATES
from workflow.unit import write_transaction

router = APIRouter(
    prefix="/api/v1/cases", tags=["cases"], responses=problem_responses(401, 422, 503)
)

STATE_NAMES = tuple(s.name for s in STATES)
PhaseFilter = Annotated[str | None, choice(PHASES, "Only cases in this phase."), one_of(PHASES)]
StateFilter = Annotated[
    str | None, choice(STATE_NAMES, "Only cases in this state."), one_of(STATE_NAMES)
]


def case_response(case: Case, response: Response) -> CasePublic:
    """The case's public view, with its ETag set on ``response``."""
    response.headers["ETag"] = etag(case.version)
    return CasePublic.model_validate(case)


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
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CasePage:
    """A page of cases in id order, optionally of one phase or state."""
    rows, last = cases.list_cases(
        session, phase=phase, state=state, limit=limit, after_id=decode_cursor("cases", cursor)
    )
    items = [CasePublic.model_validate(c) for c in rows]
    return CasePage(items=items, next_cursor=encode_cursor("cases", last))


@router.get("/{case_id}", responses={200: {"headers": ETAG_HEADER}, **problem_responses(404)})
def get_case(
    actor: CurrentActor, case_id: CaseId, session: SessionDep, response: Response
) -> CasePublic:
    """One case, with its `ETag`."""
    return case_response(cases.get_case(session, case_id), response)
