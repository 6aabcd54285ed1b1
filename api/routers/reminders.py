"""Reminders: what is due on a case, and across every case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from api.deps import CaseId, CurrentActor, SessionDep
from api.problems import problem_responses
from api.queries import Cursor, Limit, choice, decode_cursor, encode_cursor, one_of
from api.schemas import ReminderPage, ReminderPublic
from models.reminders import STATUSES
from models.schemas import Timestamp
from schedules.policies import KINDS
from schedules.service import list_reminders
from workflow.cases import get_case

router = APIRouter(tags=["reminders"], responses=problem_responses(401, 422, 503))

StatusFilter = Annotated[
    str | None, choice(STATUSES, "Only reminders with this status."), one_of(STATUSES)
]
KindFilter = Annotated[str | None, choice(KINDS, "Only reminders of this kind."), one_of(KINDS)]


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
    """A page of reminders in id order, filtered by status, kind and due time."""
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
