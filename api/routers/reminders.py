"""Reminders: what is due on a case and across every case, and acknowledging one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import MAX_ID, CaseId, CurrentActor, EngineDep, Now, SessionDep
from api.problems import problem_responses
from api.queries import Cursor, Limit, choice, decode_cursor, encode_cursor, one_of
from api.routing import ThreadedRoute
from api.schemas import ReminderPage, ReminderPublic
from models.reminders import OPEN, STATUSES
from models.schemas import Timestamp
from schedules.policies import KINDS
from schedules.service import list_reminders
from workflow import worklist
from workflow.cases import get_case
from workflow.unit import write_transaction

router = APIRouter(
    route_class=ThreadedRoute, tags=["reminders"], responses=problem_responses(401, 422, 503)
)

STATUS_CHOICES = (*STATUSES, OPEN)
StatusFilter = Annotated[
    str | None,
    choice(STATUS_CHOICES, "Only reminders with this status; `open`: pending or sent."),
    one_of(STATUS_CHOICES),
]
KindFilter = Annotated[str | None, choice(KINDS, "Only reminders of this kind."), one_of(KINDS)]
ReminderId = Annotated[int, Path(ge=1, le=MAX_ID, description="The reminder's id.")]


@router.get("/api/v1/cases/{case_id}/reminders", responses=problem_responses(404))
def case_reminders(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ReminderPage:
    """A page of the case's reminders, oldest first."""
    get_case(session, case_id)
    rows, last = list_reminders(
        session, case_id=case_id, limit=limit, after_id=decode_cursor("case-reminders", cursor)
    )
    items = [ReminderPublic.model_validate(r) for r in rows]
    return ReminderPage(items=items, next_cursor=encode_cursor("case-reminders", last))


@router.get("/api/v1/reminders")
def all_reminders(
    actor: CurrentActor,
    session: SessionDep,
    status: StatusFilter = None,
    kind: KindFilter = None,
    due_before: Timestamp | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ReminderPage:
    """A page of reminders in id order, filtered by status, kind and due time.

    `status=open` gives those still waiting (pending or sent), overdue ones included."""
    rows, last = list_reminders(
        session,
        status=status,
        kind=kind,
        due_before=due_before,
        limit=limit,
        after_id=decode_cursor("reminders", cursor),
    )
    items = [ReminderPublic.model_validate(r) for r in rows]
    return ReminderPage(items=items, next_cursor=encode_cursor("reminders", last))


@router.post(
    "/api/v1/reminders/{reminder_id}/acknowledge", responses=problem_responses(403, 404, 409)
)
def acknowledge(
    actor: CurrentActor, reminder_id: ReminderId, engine: EngineDep, now: Now
) -> ReminderPublic:
    """Acknowledge an open reminder: its repeats stop and its escalation ends.

    A user of the reminder's `recipient_role` may, and any clinician; others get 403.
    A reminder that is no longer open is a 409."""
    with write_transaction(engine) as session:
        reminder = worklist.acknowledge(session, reminder_id=reminder_id, actor=actor, now=now)
    return ReminderPublic.model_validate(reminder)
