"""The worklist: every case that needs something from staff, most urgent first (SPEC.md 9)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import CurrentActor, Now, SessionDep
from api.problems import problem_responses
from api.queries import Cursor, Limit, WorklistAssignee, assignee_id, choice, one_of
from api.routing import ThreadedRoute
from api.schemas import Public, ReminderPublic, UnmetPublic
from schedules.policies import KINDS
from workflow import worklist
from workflow.definition import STAFF

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/worklist",
    tags=["worklist"],
    responses=problem_responses(401, 422, 503),
)


RoleFilter = Annotated[
    str | None,
    choice(STAFF, "Cases with an open reminder for this role, or with none (stuck cases)."),
    one_of(STAFF),
]
KindFilter = Annotated[
    str | None, choice(KINDS, "Cases with an open reminder of this kind."), one_of(KINDS)
]


class WorkCase(Public):
    id: int
    patient_ref: str
    state: str
    phase: str
    assigned_clinician_id: int | None
    assigned_coordinator_id: int | None


class WorkReminder(ReminderPublic):
    overdue_by_seconds: int = Field(description="How long past `due_at` it is; 0 if not yet.")


class Blocked(Public):
    trigger: str
    dest: str
    allowed: bool = Field(description="Whether the caller could fire it now.")
    unmet: list[UnmetPublic] = Field(description="The same as `/transitions` gives.")


class WorkItemPublic(BaseModel):
    case: WorkCase
    reminders: list[WorkReminder] = Field(description="Open reminders, earliest due first.")
    blocked: list[Blocked] = Field(description="Each trigger from the current state.")
    in_state_since: datetime | None = Field(description="The last transition event's time.")


class WorklistPage(BaseModel):
    items: list[WorkItemPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


def public(item: worklist.Item) -> WorkItemPublic:
    """The API's view of a worklist item."""
    reminders = [
        WorkReminder.model_validate(
            {
                **ReminderPublic.model_validate(r.reminder).model_dump(),
                "overdue_by_seconds": r.overdue_by_seconds,
            }
        )
        for r in item.reminders
    ]
    return WorkItemPublic(
        case=WorkCase.model_validate(item.case),
        reminders=reminders,
        blocked=[Blocked.model_validate(option) for option in item.blocked],
        in_state_since=item.in_state_since,
    )


@router.get("")
def get_worklist(
    actor: CurrentActor,
    session: SessionDep,
    now: Now,
    assignee: WorklistAssignee = None,
    role: RoleFilter = None,
    kind: KindFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> WorklistPage:
    """A page of the worklist: an open `safety_review` or `escalation` first, then open
    reminders by how long overdue, then due ones, then open cases with no open reminder
    by time in their state. Each item says what blocks each trigger from its state."""
    items, next_cursor = worklist.worklist(
        session,
        actor=actor,
        now=now,
        assignee=assignee_id(assignee, actor),
        role=role,
        kind=kind,
        limit=limit,
        after=cursor,
    )
    return WorklistPage(items=[public(i) for i in items], next_cursor=next_cursor)
